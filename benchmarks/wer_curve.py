"""WER against training steps and minutes, from one run: synthesizes the first --items pairs of a
split with every kept snapshot of one train stage (`trainer.snapshot_every_n_steps`), the other
trained stages at their last checkpoint, as the synthesize stage does (its prompts, its sampling
options, the run's seed), and scores them with the run's evaluation ASR.

    make recipe=melle data=builtin_single trainer.snapshot_every_n_steps=500
    python benchmarks/wer_curve.py exp/melle --stage train_melle --items 20

Prints one row per snapshot (step, minutes of training, WER, CER, median output/recording length)
and writes them to `<exp>/<stage>/wer_curve.json`. Minutes are the training time the snapshot's
checkpoint records (restarts included, validation included), not wall-clock time since the start.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from omegaconf import OmegaConf

from ttsframe.data.manifest import read_manifest
from ttsframe.eval.asr import asr_from_config
from ttsframe.eval.wer import error_rates
from ttsframe.pipeline.release import synthesis_sampling
from ttsframe.pipeline.synthesize import (RUN_OPTIONS, load_synthesizer, model_options, pair_prompts, prompt_item,
                                          stage_family, stage_options)
from ttsframe.utils.atomic import write_json


def snapshots(stage_dir: Path) -> list[Path]:
    """`checkpoints/step<N>.ckpt` of a train stage, in step order."""
    found = [(int(m.group(1)), p) for p in (stage_dir / "checkpoints").glob("step*.ckpt")
             if (m := re.fullmatch(r"step(\d+)\.ckpt", p.name))]
    return [p for _, p in sorted(found)]


def trained_minutes(checkpoint: Path) -> tuple[int, float | None]:
    """(global step, minutes of training) a checkpoint records (its `TrainSummary` state)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    seconds = next((s["seconds"] for s in (state.get("callbacks") or {}).values()
                    if isinstance(s, dict) and "seconds" in s), None)
    return int(state["global_step"]), None if seconds is None else seconds / 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir", type=Path)
    p.add_argument("--stage", required=True, help="the train stage whose snapshots to score (e.g. train_melle)")
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--split", default="test")
    args = p.parse_args()

    stage_dir = args.exp_dir / args.stage
    kept = snapshots(stage_dir)
    if not kept:
        raise SystemExit(f"{stage_dir / 'checkpoints'} has no step<N>.ckpt: train with "
                         f"trainer.snapshot_every_n_steps=<N>")
    cfg = OmegaConf.load(stage_dir / "config.yaml")
    synthesize = next((s for s in cfg.stages if s.kind == "synthesize"), None)
    if synthesize is None:
        raise SystemExit(f"{stage_dir / 'config.yaml'}: the recipe has no synthesize stage to copy")
    ctx = SimpleNamespace(name=synthesize.name, options=OmegaConf.to_container(synthesize.options))
    cls = stage_family(cfg, ctx)
    options = stage_options(ctx, {**model_options(cls), **RUN_OPTIONS}, tuple(f.name for f in dataclasses.fields(cls.OPTIONS)))
    if args.stage not in [options[k] for k in cls.CHECKPOINT_STAGES]:
        raise SystemExit(f"{args.stage} is not a model stage of {synthesize.name} "
                         f"({', '.join(options[k] for k in cls.CHECKPOINT_STAGES)})")
    sampling = dataclasses.replace(synthesis_sampling(cfg, cls), seed=int(cfg.seed))

    pairs, _ = pair_prompts(read_manifest(args.exp_dir / "data" / f"{args.split}.jsonl"), options["max_prompt_seconds"])
    pairs = pairs[: args.items]
    texts = [target.text for target, _ in pairs]
    asr_cfg = cfg.eval.asr
    asr = asr_from_config(asr_cfg, "cpu")
    rows = []
    print(f"{args.exp_dir} ({cls.FAMILY}), {args.stage}: {len(pairs)} {args.split} items, {asr_cfg.backend} ASR")
    print("| step | training minutes | WER | CER | length (median, x the recording's) |\n|---|---|---|---|---|")
    for checkpoint in kept:
        step, minutes = trained_minutes(checkpoint)
        synth, _ = load_synthesizer(cfg, args.exp_dir, options, "cpu", cls, {args.stage: checkpoint})
        rate = synth.sample_rate
        size, wavs = int(options["batch_size"]), []
        for number, start in enumerate(range(0, len(pairs), size)):  # seeds as the synthesize stage's batches
            batch = [prompt_item(t, pr, rate) for t, pr in pairs[start: start + size]]
            wavs += synth.synthesize(batch, dataclasses.replace(sampling, seed=sampling.seed + number))
        rates = error_rates(texts, asr.transcribe(wavs, rate))
        lengths = [w.size / rate / max(t.duration, 1e-6) for w, (t, _) in zip(wavs, pairs)]
        rows.append({"step": step, "minutes": minutes, "wer": rates.wer, "cer": rates.cer,
                     "length_ratio_median": float(np.median(lengths)), "checkpoint": str(checkpoint)})
        shown = "-" if minutes is None else f"{minutes:.1f}"
        print(f"| {step} | {shown} | {rates.wer:.3f} | {rates.cer:.3f} | {rows[-1]['length_ratio_median']:.2f} |",
              flush=True)
    write_json(stage_dir / "wer_curve.json", {"split": args.split, "items": len(pairs), "asr": asr_cfg.backend,
                                              "rows": rows})


if __name__ == "__main__":
    main()
