"""Memorization check: a recipe trained on 16 utterances of one voice must say them back.

    python benchmarks/memorize.py valle                      # valle's CPU preset, 16 utterances
    python benchmarks/memorize.py melle --steps 1500 -- model.d_model=128
    python benchmarks/memorize.py cosyvoice --voice <speaker> -- trainer.stage_max_steps.train_lm=800

What it runs: the built-in corpus's prepare stage (cached), then 16 utterances of one voice
written as a `data=generic` manifest whose train, dev and test splits hold the same 16 utterances
(under other ids), then the whole recipe on it with the train stages' `trainer.max_steps=--steps`
(where the trainer preset names a stage in `trainer.stage_max_steps`, that wins: override it too):
the synthesize stage says the 16 texts in the zero-shot layout, each prompted by the voice's next
memorized utterance, and the evaluate stage scores them. A model that fits its 16 rows but
cannot say them back here has a mismatch between training and synthesis; run this before calling
anything a compute limit.

A recipe whose train_tokenizer stage trains a speech tokenizer (cosyvoice, valle_semantic) gets one
trained on the whole built-in corpus instead (`tokenizer.checkpoint=`, cached), as CosyVoice's LM
is trained over a pretrained tokenizer: 16 utterances cannot train an ASR (the s3_asr tokenizer
trained on them collapsed to 2 of its 625 codes, perplexity 2.0), and this check is about the
models that read its tokens.

Prints one row: recipe, steps, minutes, WER of the recordings / resynthesis / synthesis, the
median output/recording length ratio, and whether synthesis is within 1.5x the recordings' WER
(or theirs + 0.05, whichever is larger).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

SPLITS = ("train", "dev", "test")


def corpus_manifest(exp_dir: Path) -> Path:
    """The built-in corpus's train manifest (the prepare stage, cached after its first run)."""
    manifest = exp_dir / "corpus" / "data" / "train.jsonl"
    if not manifest.is_file():
        run([sys.executable, "-m", "ttsframe", "run", "valle", "--stage", "0", "--stop-stage", "0",
             f"exp_dir={exp_dir / 'corpus'}"])
    return manifest


def memorized_manifest(train: Path, out: Path, voice: str | None, count: int) -> tuple[Path, str]:
    """`count` utterances of one voice (the first voice with enough, or `voice`) as train, dev and
    test of one generic manifest; returns its path and the voice."""
    rows = [json.loads(line) for line in train.read_text().splitlines() if line.strip()]
    by_voice: dict[str, list[dict]] = {}
    for row in rows:
        by_voice.setdefault(row["speaker"], []).append(row)
    if voice is None:
        voice = next((v for v in sorted(by_voice) if len(by_voice[v]) >= count), None)
    if voice not in by_voice or len(by_voice[voice]) < count:
        raise SystemExit(f"no voice with {count} utterances (asked: {voice}); voices: {sorted(by_voice)}")
    chosen = sorted(by_voice[voice], key=lambda r: r["id"])[:count]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for split in SPLITS:
            for row in chosen:
                f.write(json.dumps({"id": f"{split}_{row['id']}", "audio": row["audio"], "text": row["text"],
                                    "speaker": voice, "split": split}) + "\n")
    return out, voice


def corpus_tokenizer(recipe: str, out_dir: Path, overrides: list[str]) -> list[str]:
    """`tokenizer.checkpoint=<a tokenizer trained on the built-in corpus>` for a recipe with a
    train_tokenizer stage (its stages 0-1 in `out_dir`, skipped once done); [] for the others, or
    when the overrides already choose a tokenizer."""
    from ttsframe.config.loading import RECIPE_DIR

    stages = yaml.safe_load((RECIPE_DIR / recipe / "recipe.yaml").read_text())["stages"]
    kinds = [stage["kind"] for stage in stages]
    if "train_tokenizer" not in kinds or any(o.startswith("tokenizer") for o in overrides):
        return []
    last = kinds.index("train_tokenizer")
    run([sys.executable, "-m", "ttsframe", "run", recipe, "--stage", "0", "--stop-stage", str(last),
         f"exp_dir={out_dir}"])
    return [f"tokenizer.checkpoint={(out_dir / stages[last]['name']).resolve()}"]


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; key=value overrides after `--`, wherever the options stand."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--steps", type=int, default=1000, help="trainer.max_steps of every train stage")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--voice", default=None)
    parser.add_argument("--exp-dir", type=Path, default=None, help="default exp/memorize_<recipe>")
    parser.add_argument("overrides", nargs="*", help="more key=value overrides (after --)")
    args, rest = parser.parse_known_args(argv)
    unknown = [r for r in rest if r != "--" and "=" not in r]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*args.overrides, *(r for r in rest if r != "--")]
    return args


def main() -> None:
    args = parse_args()
    exp = args.exp_dir or Path("exp") / f"memorize_{args.recipe}"
    manifest, voice = memorized_manifest(corpus_manifest(Path("exp") / "memorize_corpus"), exp / "memorized.jsonl",
                                         args.voice, args.count)
    began = time.time()
    tokenizer = corpus_tokenizer(args.recipe, Path("exp") / "memorize_corpus" / f"tokenizer_{args.recipe}",
                                 args.overrides)
    run([sys.executable, "-m", "ttsframe", "run", args.recipe, f"exp_dir={exp}", "data=generic",
         f"data.manifest={manifest.resolve()}", "data.min_duration=0.1", f"trainer.max_steps={args.steps}",
         f"trainer.val_check_interval={max(args.steps // 4, 1)}",
         "trainer.limit_val_batches=4", "trainer.checkpoint_every_n_steps=1000000", "trainer.audio_samples=0",
         *tokenizer, *args.overrides])
    minutes = (time.time() - began) / 60
    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())["aggregates"]
    gt, synthesis = metrics["ground_truth"]["wer"], metrics["synthesis"]["wer"]
    bar = max(1.5 * gt, gt + 0.05)
    resynthesis = metrics.get("resynthesis", {}).get("wer")
    print(f"| recipe | voice | steps | minutes | recordings WER | resynthesis | synthesis | length ratio (median) | bar |")
    print(f"| {args.recipe} | {voice} | {args.steps} | {minutes:.1f} | {gt:.3f} | {resynthesis} | {synthesis:.3f} | "
          f"{metrics['synthesis'].get('length_ratio_median')} | {'met' if synthesis <= bar else 'missed'} (<= {bar:.3f}) |")


if __name__ == "__main__":
    main()
