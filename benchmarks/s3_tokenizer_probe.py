"""S3-ASR tokenizer probe: trains the tiny preset with CTC on the built-in corpus on one CPU thread
and prints, per log step, minutes, CTC loss, dev phone error rate (quantised and not) and codebook use.

    python -m ttsframe run valle --stage 0 --stop-stage 0 exp_dir=/tmp/tok_exp     # the manifests
    python benchmarks/s3_tokenizer_probe.py --manifests /tmp/tok_exp/data \\
        --try "" --try "quantizer_warmup_steps=0" --try "fsq_levels=3,3,3,3,3,3,3,3"

`--eval-split test` scores the held-out voices instead of dev (the table's "dev" columns then
hold test figures). Each --try is a space-separated list of overrides of the tiny preset (S3AsrConfig fields) and of
TrainOptions fields, run one after another in this process; a table of the tries ends the output.
Features (Whisper log-mel at 16 kHz) and phone targets are computed once and cached next to the
manifests. Phones: the phonemizer frontend's symbols without word boundaries, punctuation and
stress (ttsframe.tokenizers.s3_asr.ctc); the phone table comes from the train transcripts.

Measured for those three tries (one thread of a 2-core x86 CPU; 1200 train / 120 dev utterances,
53 phones, 550 steps of 6000 padded frames each):
    try                       minutes  dev PER quantised (unquantised)  codes used  perplexity
    preset defaults           3.9      0.100 (0.084)                    83% of 625  ~200
    quantizer_warmup_steps=0  4.2      0.113 (0.099)                    85% of 625  ~186
    fsq_levels=(3,) * 8       4.9      0.058 (0.045)                    20% of 6561 ~377
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

import ttsframe
from ttsframe.data.audio import load_audio
from ttsframe.text.phonemes import PhonemizerFrontend
from ttsframe.tokenizers.s3_asr import S3AsrModel, get_preset
from ttsframe.tokenizers.s3_asr.ctc import PhoneTable
from ttsframe.tokenizers.s3_asr.features import LogMel, log_mel
from ttsframe.tokenizers.s3_asr.model import S3AsrConfig
from ttsframe.tokenizers.s3_asr.train import Example, TrainOptions, format_row, train_s3_asr

SAMPLE_RATE = 16_000


def read_manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def features_and_symbols(manifests: Path, split: str) -> tuple[list[np.ndarray], list[list[str]]]:
    """Log-mel (T, 80) and frontend symbols of every utterance of a split, cached as .npz/.json."""
    cache = manifests / f"s3_probe_{split}"
    if (cache.with_suffix(".json")).is_file():
        mels = np.load(cache.with_suffix(".npz"))
        symbols = json.loads(cache.with_suffix(".json").read_text())
        return [mels[str(i)] for i in range(len(symbols))], symbols
    rows = read_manifest(manifests / f"{split}.jsonl")
    features = LogMel()
    mels = [log_mel(load_audio(r["audio"], SAMPLE_RATE)[0], SAMPLE_RATE, features) for r in rows]
    symbols = PhonemizerFrontend().symbols([r["text"] for r in rows])
    np.savez(cache.with_suffix(".npz"), **{str(i): m for i, m in enumerate(mels)})
    cache.with_suffix(".json").write_text(json.dumps(symbols, ensure_ascii=False))
    return mels, symbols


def examples(table: PhoneTable, mels: list[np.ndarray], symbols: list[list[str]]) -> list[Example]:
    """Examples of the utterances whose phones are all in the table (the others are counted)."""
    out, skipped = [], 0
    for mel, seq in zip(mels, symbols):
        try:
            targets = tuple(table.encode(seq))
        except KeyError:
            skipped += 1
            continue
        if targets:
            out.append(Example(mel, targets))
    if skipped:
        print(f"  {skipped} utterances skipped: phones not in the train table")
    return out


def parse_try(spec: str) -> tuple[dict, dict]:
    """'key=value ...' -> (S3AsrConfig overrides, TrainOptions overrides), typed by the fields."""
    model_fields = {f.name: f for f in dataclasses.fields(S3AsrConfig)}
    train_fields = {f.name: f for f in dataclasses.fields(TrainOptions)}
    model, train = {}, {}
    for item in spec.split():
        key, _, value = item.partition("=")
        if key in model_fields:
            model[key] = tuple(int(v) for v in value.split(",")) if key == "fsq_levels" else type(
                getattr(get_preset("s3_asr_tiny", 2), key))(value)
        elif key in train_fields:
            default = getattr(TrainOptions(), key)
            if isinstance(default, bool):
                train[key] = value.lower() in ("1", "true", "yes")
            else:
                train[key] = None if value == "none" else (float(value) if default is None else type(default)(value))
        else:
            raise SystemExit(f"unknown override {key!r}; valid: {', '.join([*model_fields, *train_fields])}")
    return model, train


def run_try(spec: str, train: list[Example], dev: list[Example], n_symbols: int, base: dict) -> dict:
    model_over, train_over = parse_try(spec)
    config = dataclasses.replace(get_preset("s3_asr_tiny", n_symbols, model_over.pop("subsample", 4)), **model_over)
    options = TrainOptions(**{**base, **train_over})
    torch.manual_seed(options.seed)
    model = S3AsrModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n== try {spec or '(preset defaults)'}: {n_params / 1e6:.2f}M params, {config.codebook_size} codes, "
          f"{100 / config.subsample:.0f} Hz\n  {config}\n  {options}", flush=True)
    history = train_s3_asr(model, train, dev, options, log=lambda row: print("  " + format_row(row), flush=True))
    best = min(history, key=lambda r: r["dev_per"] if r["quantize"] else float("inf"))
    return {"try": spec or "(defaults)", "params_M": n_params / 1e6, "last": history[-1], "best_quantized": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", type=Path, default=Path("/tmp/tok_exp/data"))
    parser.add_argument("--try", dest="tries", action="append", default=None,
                        help="overrides, e.g. 'd_model=128 quantizer_warmup_steps=0' ('' = the preset)")
    parser.add_argument("--minutes", type=float, default=10.0, help="per try: stop at the first log past this")
    parser.add_argument("--steps", type=int, default=TrainOptions.steps, help="per try: the lr schedule's horizon")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--dev-size", type=int, default=120, help="dev utterances evaluated at each log step")
    parser.add_argument("--eval-split", default="dev",
                        help="the split scored at each log step: dev (seen voices) or test (held-out voices)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"ttsframe from {ttsframe.__file__}; torch threads {torch.get_num_threads()}")

    start = time.perf_counter()
    train_mels, train_symbols = features_and_symbols(args.manifests, "train")
    dev_mels, dev_symbols = features_and_symbols(args.manifests, args.eval_split)
    table = PhoneTable.from_sequences(train_symbols)
    train, dev = examples(table, train_mels, train_symbols), examples(table, dev_mels, dev_symbols)
    dev = dev[:: max(1, len(dev) // args.dev_size)][: args.dev_size]
    seconds = sum(len(e.mel) for e in train) / 100
    print(f"data: {len(train)} train ({seconds / 60:.1f} min of audio), {len(dev)} {args.eval_split} utterances, "
          f"{len(table.phones)} phones; features in {time.perf_counter() - start:.0f} s")

    base = {"steps": args.steps, "log_every": args.log_every, "max_minutes": args.minutes, "eval_unquantized": True}
    results = [run_try(spec, train, dev, table.n_symbols, base) for spec in (args.tries or [""])]
    print("\n| try | params | minutes | steps | train loss | dev PER quantised | dev PER unquantised "
          "| codes used | perplexity | best quantised PER (step) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        last, best = r["last"], r["best_quantized"]
        print(f"| {r['try']} | {r['params_M']:.2f}M | {last['minutes']:.1f} | {last['step']} | {last['train_loss']:.3f} "
              f"| {last['dev_per']:.3f} | {last['dev_per_unquantized']:.3f} | {100 * last['codes_used']:.1f}% "
              f"| {last['perplexity']:.0f} | {best['dev_per']:.3f} ({best['step']}) |")


if __name__ == "__main__":
    main()
