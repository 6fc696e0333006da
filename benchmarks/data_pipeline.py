"""Data pipeline figures: loader throughput and the padding that dynamic bucketing saves.

    python benchmarks/data_pipeline.py all                       # synthetic shards in a temp dir
    python benchmarks/data_pipeline.py loader --shards exp/valle/shards --workers 4
    python benchmarks/data_pipeline.py padding --max-frames 30000
    python benchmarks/data_pipeline.py tokenize --codec encodec_24khz --manifest exp/valle/data/train.jsonl

Sections are functions in SECTIONS; add one by writing `def section(args, shard_dir)` and
registering it there. Without --shards, synthetic codec shards are written to a temporary folder:
log-normal durations clipped to 1-15 s, 75 frames/s, 8 codebooks, ~14 text tokens/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from ttsframe.data.batching import DynamicBucketer, FixedBatcher, frames_length, padded_cost, sample_length
from ttsframe.data.dataset import BatchedStream, ShardStream
from ttsframe.data.shards import shard_name, write_index, write_shard

FRAME_RATE, N_CODEBOOKS, TOKENS_PER_SECOND = 75, 8, 14


def write_synthetic(shard_dir: Path, split: str, samples: int, per_shard: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    durations = np.clip(rng.lognormal(np.log(5.0), 0.6, samples), 1.0, 15.0)  # seconds
    infos = []
    for number, start in enumerate(range(0, samples, per_shard)):
        batch = []
        for i in range(start, min(start + per_shard, samples)):
            T, L = int(durations[i] * FRAME_RATE), max(1, int(durations[i] * TOKENS_PER_SECOND))
            batch.append({"__key__": f"spk{i % 40}_utt{i:06d}",
                          "tokens.npy": rng.integers(1, 100, L).astype(np.int32),
                          "codes.npy": rng.integers(0, 1024, (N_CODEBOOKS, T)).astype(np.int16),
                          "meta.json": {"id": f"spk{i % 40}_utt{i:06d}", "speaker": f"spk{i % 40}",
                                        "duration": float(durations[i]), "text": "", "phonemes": "", "frames": T}})
        infos.append(write_shard(shard_dir / shard_name(split, number), batch))
    write_index(shard_dir, split, infos, feature="codes", n_codebooks=N_CODEBOOKS, codebook_size=1024,
                frame_rate=FRAME_RATE, codec={"name": "synthetic"})


def loader_throughput(args, shard_dir: Path) -> None:
    """One shuffled epoch through ShardStream -> DynamicBucketer -> collate in DataLoader workers."""
    stream = ShardStream(shard_dir, args.split, shuffle=True, seed=0)
    dataset = BatchedStream(stream, DynamicBucketer(max_frames=args.max_frames, num_buckets=args.buckets))
    for workers in sorted({0, args.workers}):
        start = time.perf_counter()
        batches = samples = 0
        first = None
        for batch in DataLoader(dataset, batch_size=None, num_workers=workers):
            first = first or time.perf_counter() - start
            batches, samples = batches + 1, samples + len(batch)
        took = time.perf_counter() - start
        print(f"loader  workers={workers}: {batches} batches, {samples} samples in {took:.2f} s -> "
              f"{batches / took:.1f} batches/s, {samples / took:.0f} samples/s (first batch after {first:.2f} s)")


def padding_share(batches: list[list[dict]], length_fn) -> float:
    real = sum(length_fn(s) for b in batches for s in b)
    return 1 - real / sum(padded_cost(b, length_fn) for b in batches)


def padding(args, shard_dir: Path) -> None:
    """Padding with dynamic bucketing vs a fixed batch size of the same mean samples per batch."""
    samples = [{"id": s["id"], "frames": s["frames"], "tokens": s["tokens"]}
               for s in ShardStream(shard_dir, args.split, shuffle=True, seed=0)]
    dynamic = list(DynamicBucketer(max_frames=args.max_frames, num_buckets=args.buckets)(samples))
    size = max(1, round(len(samples) / len(dynamic)))
    fixed = list(FixedBatcher(size)(samples))
    print(f"padding {len(samples)} samples, max_frames={args.max_frames} (frames + tokens), {args.buckets} buckets; "
          f"fixed batch size {size} = mean of the dynamic batches")
    for name, batches in (("dynamic", dynamic), ("fixed", fixed)):
        costs = [padded_cost(b) for b in batches]
        real = np.mean([sum(s["frames"] for s in b) for b in batches])
        print(f"  {name:8s} {len(batches):5d} batches, mean {np.mean([len(b) for b in batches]):5.1f} samples "
              f"{real:7.0f} real frames; padding: frames {padding_share(batches, frames_length):6.1%}, "
              f"tokens {padding_share(batches, lambda s: len(s['tokens'])):6.1%}, "
              f"frames+tokens {padding_share(batches, sample_length):6.1%}; "
              f"padded cost mean {np.mean(costs):7.0f} max {max(costs):7d}")


def tokenize_throughput(args, shard_dir: Path) -> None:
    """Codec encoding speed (seconds of audio per second), length-grouped batches vs one file at a time."""
    from ttsframe.codecs import build_codec
    from ttsframe.config import load_group
    from ttsframe.data.manifest import read_manifest
    from ttsframe.pipeline.encode import encode_batch, length_batches, load_wavs

    if args.manifest:
        utterances = read_manifest(args.manifest)
    else:
        utterances = builtin_tiny_manifest(shard_dir)
    codec_cfg = load_group("codec", args.codec, [("benchmark", {"pretrained": False})] if args.random_init else [])
    codec = build_codec(codec_cfg)
    wavs = load_wavs(utterances, codec.sample_rate)
    seconds = sum(len(w) for w in wavs) / codec.sample_rate
    if getattr(codec, "needs_fit", False):
        codec.fit(wavs)
    start = time.perf_counter()
    for batch in length_batches(utterances, codec_cfg.batch_seconds):
        encode_batch(codec, [wavs[i] for i in batch])
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for wav in wavs:
        encode_batch(codec, [wav])
    single = time.perf_counter() - start
    print(f"tokenize ({args.codec}, {len(wavs)} files, {seconds:.0f} s audio): "
          f"batched {seconds / batched:.0f} s audio/s, one file at a time {seconds / single:.0f} s audio/s "
          f"(x{single / batched:.2f})")


def builtin_tiny_manifest(work_dir: Path):
    """Candidates of the built-in tiny corpus (synthesised into work_dir) as manifest utterances."""
    from data_prep import builtin
    from ttsframe.config import load_group
    from ttsframe.pipeline.validate import validate

    cfg = load_group("data", "builtin_tiny", [("benchmark", {"cache_dir": str(work_dir / "cache")})])
    cfg = builtin.Config(**{k: v for k, v in cfg.items()})
    checked = [validate(c, cfg.min_duration, cfg.max_duration, cfg.silence_db) for c in builtin.find(cfg)]
    return [u for u in checked if not isinstance(u, str)]


SECTIONS = {"loader": loader_throughput, "padding": padding, "tokenize": tokenize_throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--shards", type=Path, help="shard folder (default: synthetic shards in a temp dir)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--samples", type=int, default=4000, help="synthetic samples")
    parser.add_argument("--max-frames", type=int, default=20000, help="cap on B x (frames + tokens)")
    parser.add_argument("--buckets", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--codec", default="spectral", help="configs/codec/<name>.yaml for the tokenize section")
    parser.add_argument("--random-init", action="store_true", help="tokenize: EnCodec/DAC without weights (offline)")
    parser.add_argument("--manifest", type=Path, help="tokenize: a manifest (default: the built-in tiny corpus)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shard_dir = args.shards
        if shard_dir is None:
            shard_dir = Path(tmp)
            start = time.perf_counter()
            write_synthetic(shard_dir, args.split, args.samples, per_shard=500)
            print(f"synthetic: {args.samples} samples written to {shard_dir} in {time.perf_counter() - start:.1f} s")
        for name in SECTIONS if args.section == "all" else [args.section]:
            SECTIONS[name](args, shard_dir)


if __name__ == "__main__":
    main()
