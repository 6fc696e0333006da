#!/usr/bin/env bash
# GPU node check before a long run: CUDA correctness, bf16 agreement, MFU and RTF of every family's
# base preset, speed figures, and a short bf16 run of the
# VALL-E recipe's train stages (valle_base, trainer=gpu1) on an experiment folder that already has
# its shards (stage 1 done). Prints figures; the train stages write under EXP as usual.
#   bash benchmarks/gpu_check.sh exp/valle [STEPS]
set -euo pipefail
EXP=${1:?usage: gpu_check.sh EXP_DIR_WITH_SHARDS [STEPS]}
STEPS=${2:-300}
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."
echo "== correctness (attention: auto/flash vs forced SDPA vs fp32, KV cache, bf16 VALL-E)"; $PY benchmarks/gpu_check.py
echo "== every family's base preset: bf16 vs fp32 loss, frames/s and MFU (bf16 autocast steps)"
$PY benchmarks/mfu.py --device cuda --size base --batch 8 --seconds 8 --bf16
echo "== synthesis RTF at batch 1 and 32"
for B in 1 32; do
  $PY benchmarks/valle_speed.py rtf --device cuda --rtf-batch $B --frames 430 --repeats 2
  $PY benchmarks/melle_speed.py rtf --device cuda --presets base --reductions 1 --rtf-batch $B --frames 430 --repeats 2
  $PY benchmarks/ditar_speed.py rtf --device cuda --presets base --patches 4 --nfe 10 --rtf-batch $B --frames 430 --repeats 2
  $PY benchmarks/cosyvoice_speed.py flow --device cuda --presets base --rtf-batch $B --repeats 2
done
echo "== VALL-E training speed, bf16 autocast"
$PY benchmarks/valle_speed.py train --device cuda --bf16 --presets tiny,mid,base --batch 16 --seconds 8
echo "== VALL-E training speed, fp32"
$PY benchmarks/valle_speed.py train --device cuda --presets base --batch 16 --seconds 8
echo "== VALL-E AR decoding"; $PY benchmarks/valle_speed.py decode --device cuda --presets mid,base --steps 300
echo "== MELLE training speed, bf16 autocast"
$PY benchmarks/melle_speed.py train --device cuda --bf16 --presets tiny,mid,base --batch 16 --seconds 8
echo "== recipe: valle train_ar + train_nar, valle_base, bf16-mixed, $STEPS steps each"
start=$(date +%s)
$PY -m ttsframe run valle --stage 2 --stop-stage 3 --force exp_dir="$EXP" model=valle_base trainer=gpu1 \
  trainer.max_steps="$STEPS" trainer.val_check_interval=$((STEPS / 2)) trainer.checkpoint_every_n_steps=$((STEPS / 2)) \
  trainer.limit_val_batches=10 trainer.accumulate_grad_batches=1 trainer.num_workers=4 trainer.logger=csv
echo "recipe stages 2-3: $(( $(date +%s) - start )) s"
for stage in train_ar train_nar; do echo "$stage:"; cat "$EXP/$stage/summary.json"; echo; done
