"""DiTAR speed figures: training throughput per patch size and the real-time factor of synthesis
against NFE and P, with and without CFG, next to MELLE at the same LM width in the same run.
Random-init models and random data: speed only.

    python benchmarks/ditar_speed.py all                           # CPU: preset cpu, P = 1, 2, 4, 8
    python benchmarks/ditar_speed.py train --presets cpu --patches 2,4 --batch 16 --device cuda --bf16
    python benchmarks/ditar_speed.py rtf --nfe 4,10 --patches 4 --frames 430

Shapes follow the default mel config (80 bins, 22.05 kHz / hop 256 = 86.1 frames/s) with ~14
phonemes per second of speech. Presets: `tiny`, `cpu` and `base` from
`ttsframe.models.ditar.presets`. The MELLE line uses `melle_tiny` resized to the DiTAR preset's LM
(width, heads, layers, FFN), reduction factor 1, so the ratio shows what patching buys: the LM
runs once per P frames, LocDiT NFE (x2 with CFG) times per patch on P + history frames. The RTF is
the acoustic model's alone (prompt prefill + AR steps, KV cache), without a vocoder.
"""

from __future__ import annotations

import dataclasses

import torch
from timing import parse_speed_args, random_mel_batch, run_sections, speed_parser, timed

from ttsframe.models.ditar.generate import DiTARSamplingOptions, generate
from ttsframe.models.ditar.loss import ditar_loss
from ttsframe.models.ditar.model import DiTAR
from ttsframe.models.ditar.presets import ditar_base, ditar_cpu, ditar_tiny
from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel
from ttsframe.models.melle.loss import melle_loss
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import melle_tiny

M, VOCAB, FRAME_RATE, TOKENS_PER_SECOND = 80, 100, 22050 / 256, 14
PRESETS = {"tiny": ditar_tiny, "cpu": ditar_cpu, "base": ditar_base}


def build_ditar(name: str, patch: int, device: torch.device) -> DiTAR:
    return DiTAR(dataclasses.replace(PRESETS[name](VOCAB, M), patch_size=patch)).to(device)


def build_melle(name: str, device: torch.device) -> Melle:
    """MELLE (r = 1) with the DiTAR preset's LM sizes."""
    c = PRESETS[name](VOCAB, M)
    return Melle(dataclasses.replace(melle_tiny(VOCAB, M), d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers,
                                     ffn_dim=c.ffn_dim, prenet_dim=c.d_model, latent_hidden=c.d_model)).to(device)


def random_batch(batch: int, seconds: float, device: torch.device, seed: int = 0):
    """tokens (B, L), token_lengths (B,), mel (B, T, M), frame_lengths (B,): lengths in [0.7, 1] x max."""
    return random_mel_batch(batch, seconds, device, VOCAB, M, FRAME_RATE, TOKENS_PER_SECOND, seed)


def train_speed(args, device: torch.device) -> None:
    """Forward + backward + AdamW step: real (unpadded) frames per second."""
    tokens, token_lengths, mel, frame_lengths = random_batch(args.batch, args.seconds, device)
    real = int(frame_lengths.sum())
    print(f"train: batch {args.batch} x {args.seconds:.0f} s ({real} real frames), "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}")

    def step_of(model, loss_of):
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
        gen = torch.Generator(device=device).manual_seed(0)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = loss_of(model(tokens, token_lengths, mel, frame_lengths, generator=gen))["loss"]
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
        return step

    for name in args.presets:
        melle = build_melle(name, device).train()
        base = timed(step_of(melle, melle_loss), device, args.repeats)
        print(f"  melle (LM of {name}) r=1: {base * 1000:8.1f} ms/step, {real / base:9.0f} frames/s")
        for patch in args.patches:
            model = build_ditar(name, patch, device).train()
            seconds = timed(step_of(model, ditar_loss), device, args.repeats)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"  ditar {name} P={patch} {params:6.2f} M params: {seconds * 1000:8.1f} ms/step, "
                  f"{real / seconds:9.0f} frames/s ({base / seconds:5.2f}x MELLE)")


def rtf(args, device: torch.device) -> None:
    """Zero-shot synthesis of `frames` frames after a 3 s prompt: compute seconds per audio second."""
    frames, rows = args.frames, args.rtf_batch
    tokens, token_lengths, mel, _ = random_batch(rows, 3.0 + frames / FRAME_RATE, device)
    prompt = mel[:, : int(3 * FRAME_RATE)]
    prompt_lengths = torch.full((rows,), prompt.shape[1], device=device)
    budget = torch.full((rows,), frames, device=device)
    audio = rows * frames / FRAME_RATE
    print(f"rtf: batch {rows} x {frames / FRAME_RATE:.1f} s, 3 s prompt, {int(token_lengths[0])} phonemes, "
          "KV cache, no vocoder")
    for name in args.presets:
        melle = build_melle(name, device).eval()
        options = MelleSamplingOptions(temperature=1.0, min_frames=frames)
        base = timed(lambda: generate_mel(melle, tokens, token_lengths, prompt, prompt_lengths, options, budget),
                     device, args.repeats) / audio
        print(f"  melle (LM of {name}) r=1: RTF {base:.4f}")
        for patch in args.patches:
            model = build_ditar(name, patch, device).eval()
            for nfe in args.nfe:
                for cfg in (0.0, 1.0):
                    options = DiTARSamplingOptions(nfe=nfe, cfg_scale=cfg, min_frames=frames)
                    seconds = timed(lambda: generate(model, tokens, token_lengths, prompt, prompt_lengths, options,
                                                     budget, budget), device, args.repeats)
                    print(f"  ditar {name} P={patch} NFE={nfe:2d} CFG={cfg:g}: RTF {seconds / audio:.4f} "
                          f"({base / (seconds / audio):5.2f}x MELLE's speed)")


SECTIONS = {"train": train_speed, "rtf": rtf}


def main() -> None:
    parser = speed_parser(__doc__, SECTIONS, PRESETS)
    parser.set_defaults(presets="cpu", repeats=2)
    parser.add_argument("--patches", default="1,2,4,8", help="comma-separated patch sizes P")
    parser.add_argument("--nfe", default="4,10", help="rtf: comma-separated LocDiT steps per patch")
    args, device = parse_speed_args(parser, PRESETS)
    args.patches = [int(p) for p in args.patches.split(",") if p]
    args.nfe = [int(n) for n in args.nfe.split(",") if n]
    run_sections(SECTIONS, args, device)


if __name__ == "__main__":
    main()
