"""VALL-E speed figures: training throughput, AR decoding with and without the KV cache, and the
real-time factor of zero-shot synthesis. Random-init models and random data: speed only.

    python benchmarks/valle_speed.py all                         # CPU, presets tiny and mid
    python benchmarks/valle_speed.py train --presets tiny,mid,base --batch 16 --seconds 8 --device cuda --bf16
    python benchmarks/valle_speed.py decode --presets mid --steps 300
    python benchmarks/valle_speed.py rtf --frames 430

Shapes follow EnCodec 24 kHz (8 codebooks of 1024, 75 frames/s) with ~14 phonemes per second of
speech, so a batch of B rows of S seconds holds about B * 75 * S frames. Presets: `tiny` and
`base` from `ttsframe.models.valle.presets`, and `mid` (6 layers x 512, FFN 2048) defined here.
The rtf section uses the tiny preset with the spectral codec (Griffin-Lim, 60 iterations).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from timing import parse_speed_args, random_lengths, run_sections, speed_parser, timed

from ttsframe.models.valle.loss import codebook_loss
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.models.valle.presets import valle_base, valle_tiny
from ttsframe.modules.sampling import SamplingOptions, sample_next

K, N, VOCAB, FRAME_RATE, TOKENS_PER_SECOND = 8, 1024, 100, 75, 14


def valle_mid(vocab_size: int, n_codebooks: int, codebook_size: int) -> ValleConfig:
    return dataclasses.replace(valle_base(vocab_size, n_codebooks, codebook_size),
                               d_model=512, n_heads=8, n_layers=6, ffn_dim=2048)


PRESETS = {"tiny": valle_tiny, "mid": valle_mid, "base": valle_base}


def random_batch(batch: int, seconds: float, device: torch.device, seed: int = 0):
    """tokens (B, L), token_lengths (B,), codes (B, K, T), frame_lengths (B,): lengths in [0.7, 1] x max."""
    gen, frame_lengths, token_lengths, n_frames, n_tokens = random_lengths(batch, seconds, FRAME_RATE,
                                                                           TOKENS_PER_SECOND, seed)
    tokens = torch.randint(1, VOCAB, (batch, n_tokens), generator=gen)
    codes = torch.randint(0, N, (batch, K, n_frames), generator=gen)
    return [x.to(device) for x in (tokens, token_lengths, codes, frame_lengths)]


def train_speed(args, device: torch.device) -> None:
    """Forward + backward + AdamW step: real (unpadded) frames per second."""
    tokens, token_lengths, codes, frame_lengths = random_batch(args.batch, args.seconds, device)
    real = int(frame_lengths.sum())
    print(f"train: batch {args.batch} x {args.seconds:.0f} s ({real} real frames, {codes.shape[-1]} max), "
          f"K={K} N={N}, {'bf16 autocast' if args.bf16 else 'fp32'}")
    for name in args.presets:
        config = PRESETS[name](VOCAB, K, N)
        for kind in (ValleAR, ValleNAR):
            model = kind(config).to(device).train()
            optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
            gen = torch.Generator(device=device).manual_seed(0)

            def step():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                    extra = {"generator": gen} if kind is ValleNAR else {}
                    loss = codebook_loss(model(tokens, token_lengths, codes, frame_lengths, **extra))["loss"]
                loss.backward()
                optim.step()
                optim.zero_grad(set_to_none=True)

            seconds = timed(step, device, args.repeats)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"  {name:5s} {kind.__name__:8s} {params:7.1f} M params: {seconds * 1000:8.1f} ms/step, "
                  f"{real / seconds:9.0f} frames/s ({real / seconds / FRAME_RATE:7.1f} s of audio/s)")


def decode_uncached(ar: ValleAR, tokens, token_lengths, prompt, prompt_lengths, steps: int, options) -> torch.Tensor:
    """AR decoding with a full forward over [text ; BOS, prompt, generated] at every step."""
    generator = options.generator(tokens.device)
    codes = prompt
    for _ in range(steps):
        lengths = prompt_lengths + (codes.shape[1] - prompt.shape[1])
        logits = ar(tokens, token_lengths, codes, lengths).logits  # (B, T + 1, N + 1)
        last = logits.gather(1, lengths[:, None, None].expand(-1, 1, logits.shape[-1])).squeeze(1)  # (B, N + 1)
        last[:, ar.config.audio_eos] = -float("inf")
        codes = torch.cat([codes, sample_next(last, None, options, generator)[:, None]], dim=1)
    return codes


def decode_speed(args, device: torch.device) -> None:
    """First-codebook tokens per second, batch of 1: KV cache vs a full forward per step."""
    from ttsframe.models.valle.generate import generate_ar

    steps = args.steps
    tokens, token_lengths, codes, _ = random_batch(1, 3.0 + steps / FRAME_RATE, device)
    prompt = codes[:, 0, : 3 * FRAME_RATE]  # 3 s prompt (B, Tp)
    prompt_lengths = torch.full((1,), prompt.shape[1], device=device)
    options = SamplingOptions(top_k=50, min_frames=steps, max_frames_per_token=0.0, max_frames_base=steps)
    print(f"decode: batch 1, {int(token_lengths[0])} phonemes, 3 s prompt ({prompt.shape[1]} frames), {steps} steps")
    for name in args.presets:
        ar = ValleAR(PRESETS[name](VOCAB, K, N)).to(device).eval()
        with torch.inference_mode():
            cached = timed(lambda: generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options),
                           device, args.repeats)
            full = timed(lambda: decode_uncached(ar, tokens, token_lengths, prompt, prompt_lengths, steps, options),
                         device, 1)
        print(f"  {name:5s} KV cache {steps / cached:8.1f} tokens/s, full forward {steps / full:8.1f} tokens/s "
              f"(x{full / cached:.1f})")


def rtf(args, device: torch.device) -> None:
    """Zero-shot synthesis, tiny preset + spectral codec: seconds of compute per second of audio."""
    from ttsframe.codecs.spectral import Config, SpectralCodec
    from ttsframe.inference import SynthesisItem
    from ttsframe.models.valle.synthesizer import ValleSynthesizer
    from ttsframe.text import CharFrontend, Vocabulary

    codec = SpectralCodec(Config(kmeans_iters=3, fit_max_frames=1024, device=str(device)))  # quick fit: speed only
    rate = codec.sample_rate
    t = np.arange(8 * rate) / rate
    audio = (0.3 * np.sin(2 * np.pi * 140 * t * (1 + 0.05 * np.sin(3 * t)))).astype(np.float32)
    codec.fit([audio + 0.01 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32)])
    text = "the quick brown fox jumps over the lazy dog, then it sleeps in the warm sun."
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols([text]), frontend.settings())
    config = valle_tiny(len(vocab), codec.n_codebooks, codec.codebook_size)
    synth = ValleSynthesizer(ValleAR(config).to(device), ValleNAR(config).to(device), codec, frontend, vocab)
    frames = args.frames
    options = SamplingOptions(top_k=50, min_frames=frames, max_frames_per_token=0.0, max_frames_base=frames)
    items = [SynthesisItem(text, audio[: 4 * rate], rate, "a prompt text")] * args.rtf_batch
    total = timed(lambda: synth.synthesize(items, options), device, args.repeats)
    codes = [torch.randint(0, codec.codebook_size, (codec.n_codebooks, frames))] * args.rtf_batch
    decode = timed(lambda: synth.decode(codes), device, args.repeats)
    seconds = args.rtf_batch * frames / codec.frame_rate
    print(f"rtf: tiny + spectral codec ({codec.n_codebooks}x{codec.codebook_size}, Griffin-Lim "
          f"{codec.config.griffin_lim_iters} it), batch {args.rtf_batch} x {frames / codec.frame_rate:.1f} s, 3 s prompt")
    print(f"  total RTF {total / seconds:.3f} ({total:.2f} s for {seconds:.1f} s of audio); "
          f"codec.decode alone RTF {decode / seconds:.3f}, prompt + AR + NAR RTF {(total - decode) / seconds:.3f}")


SECTIONS = {"train": train_speed, "decode": decode_speed, "rtf": rtf}


def main() -> None:
    parser = speed_parser(__doc__, SECTIONS, PRESETS)
    parser.add_argument("--steps", type=int, default=150, help="decode: AR steps")
    args, device = parse_speed_args(parser, PRESETS)
    run_sections(SECTIONS, args, device)


if __name__ == "__main__":
    main()
