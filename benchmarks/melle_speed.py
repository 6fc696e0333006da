"""MELLE speed figures: training throughput and the real-time factor of synthesis, reduction
factor r = 1 vs r = 4. Random-init models and random data: speed only.

    python benchmarks/melle_speed.py all                         # CPU, presets tiny and mid, r = 1 and 4
    python benchmarks/melle_speed.py train --presets tiny,mid,base --batch 16 --seconds 8 --device cuda --bf16
    python benchmarks/melle_speed.py rtf --frames 430 --reductions 1,2,4

Shapes follow the default mel config (80 bins, 22.05 kHz / hop 256 = 86.1 frames/s) with ~14
phonemes per second of speech. Presets: `tiny` and `base` from `ttsframe.models.melle.presets`,
and `mid` (6 layers x 512, FFN 2048) defined here. The RTF is the acoustic model's alone
(prompt prefill + AR steps + post-net, KV cache), without a vocoder: seconds of compute per
second of generated mel.
"""

from __future__ import annotations

import dataclasses

import torch
from timing import parse_speed_args, random_mel_batch, run_sections, speed_parser, timed

from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel
from ttsframe.models.melle.loss import melle_loss
from ttsframe.models.melle.model import Melle, MelleConfig
from ttsframe.models.melle.presets import melle_base, melle_tiny

M, VOCAB, FRAME_RATE, TOKENS_PER_SECOND = 80, 100, 22050 / 256, 14


def melle_mid(vocab_size: int, n_mels: int = M) -> MelleConfig:
    return dataclasses.replace(melle_base(vocab_size, n_mels), d_model=512, n_heads=8, n_layers=6, ffn_dim=2048)


PRESETS = {"tiny": melle_tiny, "mid": melle_mid, "base": melle_base}


def build(name: str, r: int, device: torch.device) -> Melle:
    return Melle(dataclasses.replace(PRESETS[name](VOCAB, M), reduction_factor=r)).to(device)


def random_batch(batch: int, seconds: float, device: torch.device, seed: int = 0):
    """tokens (B, L), token_lengths (B,), mel (B, T, M), frame_lengths (B,): lengths in [0.7, 1] x max."""
    return random_mel_batch(batch, seconds, device, VOCAB, M, FRAME_RATE, TOKENS_PER_SECOND, seed)


def train_speed(args, device: torch.device) -> None:
    """Forward + backward + AdamW step: real (unpadded) frames per second."""
    tokens, token_lengths, mel, frame_lengths = random_batch(args.batch, args.seconds, device)
    real = int(frame_lengths.sum())
    print(f"train: batch {args.batch} x {args.seconds:.0f} s ({real} real frames, {mel.shape[1]} max), "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}")
    for name in args.presets:
        for r in args.reductions:
            model = build(name, r, device).train()
            optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
            gen = torch.Generator(device=device).manual_seed(0)

            def step():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                    loss = melle_loss(model(tokens, token_lengths, mel, frame_lengths, generator=gen))["loss"]
                loss.backward()
                optim.step()
                optim.zero_grad(set_to_none=True)

            seconds = timed(step, device, args.repeats)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"  {name:5s} r={r} {params:7.1f} M params: {seconds * 1000:8.1f} ms/step, "
                  f"{real / seconds:9.0f} frames/s ({real / seconds / FRAME_RATE:7.1f} s of audio/s)")


def rtf(args, device: torch.device) -> None:
    """Zero-shot synthesis of `frames` frames after a 3 s prompt: compute seconds per audio second."""
    frames = args.frames
    tokens, token_lengths, mel, _ = random_batch(args.rtf_batch, 3.0 + frames / FRAME_RATE, device)
    prompt = mel[:, : int(3 * FRAME_RATE)]
    prompt_lengths = torch.full((args.rtf_batch,), prompt.shape[1], device=device)
    budget = torch.full((args.rtf_batch,), frames, device=device)
    options = MelleSamplingOptions(temperature=1.0, min_frames=frames)  # exactly `frames` frames
    audio = args.rtf_batch * frames / FRAME_RATE
    print(f"rtf: batch {args.rtf_batch} x {frames / FRAME_RATE:.1f} s, 3 s prompt ({prompt.shape[1]} frames), "
          f"{int(token_lengths[0])} phonemes, KV cache, no vocoder")
    for name in args.presets:
        for r in args.reductions:
            model = build(name, r, device).eval()
            seconds = timed(lambda: generate_mel(model, tokens, token_lengths, prompt, prompt_lengths, options,
                                                 budget), device, args.repeats)
            print(f"  {name:5s} r={r}: {seconds:7.3f} s per call, RTF {seconds / audio:.4f} "
                  f"({-(-frames // r)} steps, {frames / seconds:8.0f} frames/s)")


SECTIONS = {"train": train_speed, "rtf": rtf}


def main() -> None:
    parser = speed_parser(__doc__, SECTIONS, PRESETS)
    parser.add_argument("--reductions", default="1,4", help="comma-separated reduction factors (1..4)")
    args, device = parse_speed_args(parser, PRESETS)
    args.reductions = [int(r) for r in args.reductions.split(",") if r]
    run_sections(SECTIONS, args, device)


if __name__ == "__main__":
    main()
