"""CosyVoice speed figures: training throughput of the LM and the flow, LM decoding with and without
the KV cache, the flow's real-time factor per number of Euler steps (NFE), and streaming latency.
Random-init models and random data: speed only.

    python benchmarks/cosyvoice_speed.py all                          # CPU, presets tiny and cpu
    python benchmarks/cosyvoice_speed.py train --presets cpu,base --batch 16 --device cuda --bf16
    python benchmarks/cosyvoice_speed.py stream --rtf-batch 8

Shapes: 25 speech tokens/s (625 codes), 86.1 mel frames/s, ~14 text symbols/s, speaker embedding 256.
`stream` runs a whole `CosyVoiceSynthesizer` (tiny random parts + Griffin-Lim 8 iterations) and
prints the seconds to the first audio chunk and the RTF, streaming vs offline, for batch 1 (and,
offline, `--rtf-batch` items).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from timing import parse_speed_args, run_sections, speed_parser, timed

from ttsframe.models.cosyvoice.flow import CosyVoiceFlow
from ttsframe.models.cosyvoice.flow_loss import cfm_loss
from ttsframe.models.cosyvoice.lm import SpeechLM, lm_loss
from ttsframe.models.cosyvoice.lm_generate import LMSamplingOptions, generate
from ttsframe.models.cosyvoice.presets import FAMILY_PRESETS

N_SPEECH, TOKEN_RATE, MEL_RATE, TEXT_RATE, SPK, VOCAB = 625, 25.0, 22050 / 256, 14, 256, 100
PRESETS = {"tiny": "cosyvoice_tiny", "cpu": "cosyvoice_cpu", "base": "cosyvoice_base"}


def models(name: str, device: torch.device) -> tuple[SpeechLM, CosyVoiceFlow]:
    preset = FAMILY_PRESETS[PRESETS[name]]
    return (SpeechLM(preset.lm(VOCAB, N_SPEECH, SPK)).to(device),
            CosyVoiceFlow(preset.flow(N_SPEECH, TOKEN_RATE, SPK)).to(device))


def batch(args, device):
    n_text, n_speech, n_mel = int(args.seconds * TEXT_RATE), int(args.seconds * TOKEN_RATE), int(args.seconds * MEL_RATE)
    b = args.batch
    return {"text": torch.randint(4, VOCAB, (b, n_text), device=device), "text_lengths": torch.full((b,), n_text),
            "speech": torch.randint(0, N_SPEECH, (b, n_speech), device=device),
            "speech_lengths": torch.full((b,), n_speech), "mel": torch.randn(b, n_mel, 80, device=device),
            "mel_lengths": torch.full((b,), n_mel), "spk": torch.randn(b, SPK, device=device)}


def train(args, device) -> None:
    """ms per optimizer step and frames (tokens for the LM, mel frames for the flow) per second."""
    x = batch(args, device)
    for name in args.presets:
        lm, flow = models(name, device)
        for label, model, loss, frames in (
                ("LM", lm, lambda: lm_loss(*_lm_logits(lm, x))["loss"], int(x["speech_lengths"].sum())),
                ("flow", flow, lambda: cfm_loss(flow(x["speech"], x["speech_lengths"], x["mel"], x["mel_lengths"],
                                                     x["spk"])), int(x["mel_lengths"].sum()))):
            optimizer = torch.optim.AdamW(model.parameters(), 1e-4)

            def step():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                    value = loss()
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()

            seconds = timed(step, device, args.repeats)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"train {name:5s} {label:4s} {params:7.2f} M params: {seconds * 1e3:8.1f} ms/step, "
                  f"{frames / seconds:9.0f} frames/s ({args.batch} x {args.seconds:g} s)")


def _lm_logits(lm, x):
    prediction = lm.predict(x["text"], x["text_lengths"], x["speech"], x["speech_lengths"], x["spk"])
    return prediction.logits, prediction.targets


@torch.inference_mode()
def decode(args, device) -> None:
    """LM tokens/s at batch 1 for `--frames` tokens, KV cache vs recomputing the whole prefix."""
    n = max(1, args.frames // 4)  # tokens at 25 Hz for the same speech length as `--frames` mel frames
    options = LMSamplingOptions(min_token_text_ratio=n / 20, max_token_text_ratio=n / 20, seed=0)
    text, lengths = torch.randint(4, VOCAB, (1, 20), device=device), torch.tensor([20])
    spk, none = torch.randn(1, SPK, device=device), torch.zeros(1, 0, dtype=torch.long, device=device)
    for name in args.presets:
        lm, _ = models(name, device)
        lm.eval()
        cached = timed(lambda: generate(lm, text, lengths, spk, none, torch.tensor([0]), options), device, args.repeats)

        def full():
            speech = torch.zeros(1, 0, dtype=torch.long, device=device)
            for _ in range(n):
                logits = lm(text, lengths, speech, torch.tensor([speech.shape[1]]), spk)[:, -1, :N_SPEECH]
                speech = torch.cat([speech, logits.argmax(-1, keepdim=True)], dim=1)

        uncached = timed(full, device, 1)
        print(f"decode {name:5s}: {n / cached:7.1f} tokens/s with the KV cache, {n / uncached:7.1f} without "
              f"(x{uncached / cached:.1f})")


@torch.inference_mode()
def flow_rtf(args, device) -> None:
    """Flow RTF (compute s / audio s) per Euler steps, with and without CFG (CFG doubles the NFE)."""
    seconds = args.frames / MEL_RATE
    tokens = torch.randint(0, N_SPEECH, (args.rtf_batch, int(seconds * TOKEN_RATE)), device=device)
    lengths = torch.full((args.rtf_batch,), tokens.shape[1])
    spk = torch.randn(args.rtf_batch, SPK, device=device)
    for name in args.presets:
        _, flow = models(name, device)
        flow.eval()
        for steps in (2, 5, 10):
            for cfg in (0.0, 0.7):
                t = timed(lambda: flow.sample(tokens, lengths, spk, n_steps=steps, cfg_scale=cfg, seed=0), device,
                          args.repeats)
                print(f"flow {name:5s} steps {steps:2d} cfg {cfg:.1f}: RTF {t / (seconds * args.rtf_batch):.4f} "
                      f"(batch {args.rtf_batch}, {seconds:.1f} s each)")


def stream(args, device) -> None:
    """First-chunk latency and RTF of a whole synthesizer, streaming vs offline."""
    from ttsframe.inference import SynthesisItem
    from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions
    from ttsframe.models.cosyvoice.streaming import StreamStats

    synth = _tiny_synthesizer(device)
    rate = synth.sample_rate
    prompt = (0.3 * np.sin(2 * np.pi * 150 * np.arange(int(2.0 * rate)) / rate)).astype(np.float32)
    text = "the quick brown fox jumps over the lazy dog"
    options = CosyVoiceSamplingOptions(min_token_text_ratio=2.0, max_token_text_ratio=2.0, seed=0)
    item = SynthesisItem(text, prompt, rate, "a short prompt")
    synth.synthesize([item], options)  # warm-up: the first call imports librosa (Resemblyzer) and more
    for chunk in (synth.flow.config.chunk_tokens, 3 * synth.flow.config.chunk_tokens):
        stats = StreamStats()
        audio = sum(len(piece) for piece in synth.stream(item, options, chunk, stats=stats)) / rate
        print(f"stream, {chunk} tokens per flow call: first chunk after {stats.first_chunk_seconds:.3f} s, "
              f"{stats.chunks} chunks, RTF {stats.compute_seconds / audio:.3f} ({audio:.2f} s of audio)")
    for size in sorted({1, args.rtf_batch}):
        began = time.perf_counter()
        wavs = synth.synthesize([item] * size, options)
        spent = time.perf_counter() - began
        print(f"offline batch {size}: first audio after {spent:.3f} s, RTF {spent / (sum(map(len, wavs)) / rate):.3f}")


def _tiny_synthesizer(device):
    import tempfile
    from pathlib import Path

    from ttsframe.codecs.mel import MelConfig
    from ttsframe.eval.speaker import build_speaker_encoder
    from ttsframe.models.cosyvoice.synthesizer import CosyVoiceSynthesizer
    from ttsframe.text import CharFrontend, Vocabulary
    from ttsframe.tokenizers.s3_asr.features import AsrFeatureConfig
    from ttsframe.tokenizers.s3_asr.io import load_tokenizer, save_tokenizer
    from ttsframe.tokenizers.s3_asr.model import S3AsrModel
    from ttsframe.tokenizers.s3_asr.presets import s3_asr_tiny
    from ttsframe.vocoders import build_vocoder

    folder = Path(tempfile.mkdtemp())
    save_tokenizer(folder, S3AsrModel(s3_asr_tiny(60)), tuple("abc"), AsrFeatureConfig(), [])
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["the quick brown fox jumps over the lazy dog, a short prompt."]),
                             frontend.settings())
    lm, flow = models("tiny", device)
    lm = SpeechLM(dataclasses.replace(lm.config, n_text=len(vocab))).to(device)
    return CosyVoiceSynthesizer(lm, flow, load_tokenizer(folder, device),
                                (build_speaker_encoder("resemblyzer", device=str(device)), "resemblyzer", None), MelConfig(),
                                frontend, vocab, build_vocoder("griffin_lim", MelConfig(), n_iter=8),
                                text_config={"frontend": "chars", "language": "en-us"})


SECTIONS = {"train": train, "decode": decode, "flow": flow_rtf, "stream": stream}

if __name__ == "__main__":
    parser = speed_parser(__doc__, SECTIONS, PRESETS)
    parser.set_defaults(presets="tiny,cpu", batch=8, seconds=4.0)
    args, device = parse_speed_args(parser, PRESETS)
    run_sections(SECTIONS, args, device)
