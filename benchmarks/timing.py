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
