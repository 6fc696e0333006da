"""Vocoder figures: real-time factor, and how close each vocoder's output is to its input mel.

    python benchmarks/vocoder_speed.py rtf                        # universal HiFi-GAN, tiny, Griffin-Lim on CPU
    python benchmarks/vocoder_speed.py rtf --device cuda --seconds 10
    python benchmarks/vocoder_speed.py quality --utterances 8     # built-in corpus, synthesised in a temp cache
    python benchmarks/vocoder_speed.py quality --manifest exp/melle/data/dev.jsonl

RTF = seconds of compute / seconds of audio (below 1: faster than real time), median of
`--repeats` runs after one warm-up, on a log-mel of `--seconds` of noise-excited harmonics (the
vocoders' cost does not depend on the content). Quality: mean log-mel L1 between each utterance's
mel and the mel of the vocoded audio (the same MelConfig), on every frame ("all") and on frames
above -8 mean log-mel ("voiced"; silence in synthetic speech is digital zero, where any noise
floor costs a lot of log-mel L1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from ttsframe.codecs.mel import MelConfig, MelSpectrogram
from ttsframe.vocoders import build_vocoder
from ttsframe.vocoders.hifigan import HifiGanGenerator, HifiGanVocoder, tiny


def vocoders(mel: MelConfig, device: str, gl_iters: int) -> dict:
    torch.manual_seed(0)
    return {
        "hifigan universal_v1": build_vocoder("hifigan", mel).to(device),
        "hifigan tiny (random init)": HifiGanVocoder(mel, generator=HifiGanGenerator(tiny())).to(device),
        f"griffin_lim ({gl_iters} iters)": build_vocoder("griffin_lim", mel, n_iter=gl_iters).to(device),
    }


def test_signal(mel: MelConfig, seconds: float) -> torch.Tensor:
    t = torch.arange(int(seconds * mel.sample_rate)) / mel.sample_rate
    f0 = 120 + 30 * torch.sin(2 * torch.pi * 0.5 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / mel.sample_rate
    wav = sum(torch.sin(k * phase) / k for k in range(1, 20)) * 0.1 + 0.005 * torch.randn_like(t)
    return wav[None]  # (1, N)


def rtf(args) -> None:
    mel_config = MelConfig()
    mel = MelSpectrogram(mel_config)(test_signal(mel_config, args.seconds)).to(args.device)
    print(f"RTF on {args.device} ({torch.get_num_threads()} threads), {args.seconds:.0f} s of audio, "
          f"median of {args.repeats}:")
    for name, vocoder in vocoders(mel_config, args.device, args.gl_iters).items():
        times = []
        for i in range(args.repeats + 1):
            if args.device == "cuda":
                torch.cuda.synchronize()
            began = time.perf_counter()
            vocoder(mel)
            if args.device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first run warms up
                times.append(time.perf_counter() - began)
        print(f"  {name:30s} RTF {statistics.median(times) / args.seconds:.3f}")


def utterances(args) -> list[str]:
    if args.manifest:
        from ttsframe.data.manifest import read_manifest

        return [u.audio for u in read_manifest(args.manifest)[: args.utterances]]
    from data_prep import builtin

    cfg = builtin.Config(cache_dir=tempfile.mkdtemp(prefix="vocoder_bench_"), num_train_voices=4, num_test_voices=2,
                         num_train_sentences=8, train_sentences_per_voice=2, num_dev_sentences=1,
                         num_test_sentences=1, seed=0)
    return [c.audio for c in builtin.find(cfg)][: args.utterances]


@torch.inference_mode()
def quality(args) -> None:
    from ttsframe.data.audio import load_audio

    mel_config = MelConfig()
    features = MelSpectrogram(mel_config)
    results: dict[str, list[tuple[float, float]]] = {}
    paths = utterances(args)
    models = vocoders(mel_config, "cpu", args.gl_iters)
    for path in paths:
        mel = features(torch.from_numpy(load_audio(path, mel_config.sample_rate)[0])[None])  # (1, M, T)
        voiced = (mel.mean(1, keepdim=True) > -8).expand_as(mel)
        for name, vocoder in models.items():
            error = (features(vocoder(mel)) - mel).abs()
            results.setdefault(name, []).append((error.mean().item(), error[voiced].mean().item()))
    print(f"log-mel L1 to the input mel over {len(paths)} utterances (all frames / voiced frames):")
    for name, values in results.items():
        print(f"  {name:30s} {statistics.mean(v[0] for v in values):.3f} / {statistics.mean(v[1] for v in values):.3f}")


SECTIONS = {"rtf": rtf, "quality": quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gl-iters", type=int, default=60)
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--manifest", default=None, help="a manifest to take the quality utterances from")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name, section in SECTIONS.items():
        if args.section in (name, "all"):
            section(args)


if __name__ == "__main__":
    main()
