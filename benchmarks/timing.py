"""Timing helpers shared by the benchmark scripts (run as `python benchmarks/<name>.py`)."""

from __future__ import annotations

import argparse
import time

import torch


def sync(device: torch.device) -> None:
    """Waits for queued CUDA work, so a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call of fn() after one warm-up call."""
    fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def speed_parser(doc: str, sections: dict, presets: dict) -> argparse.ArgumentParser:
    """The options every `<family>_speed.py` takes; the script adds its own before `parse_speed_args`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=[*sections, "all"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--presets", default="tiny,mid", help=f"comma-separated, of {', '.join(presets)}")
    parser.add_argument("--batch", type=int, default=4, help="train: rows per batch")
    parser.add_argument("--seconds", type=float, default=5.0, help="train: longest row, seconds of speech")
    parser.add_argument("--bf16", action="store_true", help="train: bf16 autocast")
    parser.add_argument("--frames", type=int, default=430, help="rtf: frames generated per item (86/s)")
    parser.add_argument("--rtf-batch", type=int, default=1, help="rtf: items per synthesize call")
    parser.add_argument("--repeats", type=int, default=3)
    return parser


def parse_speed_args(parser: argparse.ArgumentParser, presets: dict) -> tuple[argparse.Namespace, torch.device]:
    """Parses, checks the preset names (args.presets becomes a list), sets the CPU threads and prints
    the device line."""
    args = parser.parse_args()
    args.presets = [p for p in args.presets.split(",") if p]
    unknown = set(args.presets) - set(presets)
    if unknown:
        parser.error(f"unknown presets {sorted(unknown)}; valid: {', '.join(presets)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    return args, device


def run_sections(sections: dict, args: argparse.Namespace, device: torch.device) -> None:
    for name in sections if args.section == "all" else [args.section]:
        sections[name](args, device)


def random_lengths(batch: int, seconds: float, frame_rate: float, tokens_per_second: float, seed: int = 0):
    """A seeded generator and the lengths of a random batch: frame_lengths, token_lengths (B,) in
    [0.7, 1] x the longest row's (row 0), and the longest row's frames and tokens."""
    gen = torch.Generator().manual_seed(seed)
    n_frames, n_tokens = int(seconds * frame_rate), int(seconds * tokens_per_second)
    scale = 0.7 + 0.3 * torch.rand(batch, generator=gen)
    scale[0] = 1.0
    return gen, (scale * n_frames).long(), (scale * n_tokens).long().clamp(min=1), n_frames, n_tokens


def random_mel_batch(batch: int, seconds: float, device: torch.device, vocab: int, n_mels: int, frame_rate: float,
                     tokens_per_second: float, seed: int = 0):
    """tokens (B, L), token_lengths (B,), mel (B, T, M) around -5 (log units), frame_lengths (B,)."""
    gen, frame_lengths, token_lengths, n_frames, n_tokens = random_lengths(batch, seconds, frame_rate,
                                                                           tokens_per_second, seed)
    tokens = torch.randint(1, vocab, (batch, n_tokens), generator=gen)
    mel = torch.randn(batch, n_frames, n_mels, generator=gen) * 2 - 5
    return [x.to(device) for x in (tokens, token_lengths, mel, frame_lengths)]
