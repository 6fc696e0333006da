"""Evaluation figures: seconds per clip of every metric the evaluate stage computes.

    python benchmarks/eval_speed.py                              # built-in voices, synthesised in a temp folder
    python benchmarks/eval_speed.py --manifest exp/valle/data/test.jsonl --clips 8
    python benchmarks/eval_speed.py --dnsmos-windows 0           # DNSMOS on every 1-s hop (Microsoft's rule)

Each figure is the median over the clips of one call on one clip (after one warm-up call, which
pays the imports and model loads), with the clip's length: the evaluate stage scores three
systems per test item, so its time per item is about three times the sum of the per-clip rows
(SIM: four embeddings, MCD / F0: two pairs, PESQ / STOI: one pair).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ttsframe.data.audio import load_audio
from ttsframe.eval.scorers import EVAL_RATE


def builtin_clips(folder: Path, count: int) -> list[np.ndarray]:
    """`count` sentences of the built-in corpus's held-out espeak voices, at EVAL_RATE."""
    from data_prep import builtin, builtin_synth
    from data_prep.builtin_text import sentences

    voices = [v for v in builtin.TEST_VOICES if v.engine == "espeak"]
    jobs = [builtin_synth.Job(voices[i % len(voices)], text, str(folder / f"{i}.wav"), EVAL_RATE)
            for i, text in enumerate(sentences(count, seed=0))]
    builtin_synth.synthesize(jobs, num_workers=1)
    return [load_audio(job.path, EVAL_RATE)[0] for job in jobs]


def manifest_clips(path: str, count: int) -> list[np.ndarray]:
    from ttsframe.data.manifest import read_manifest

    return [load_audio(u.audio, EVAL_RATE, u.start, u.end)[0] for u in read_manifest(path)[:count]]


def metrics(dnsmos_windows: int | None) -> dict:
    """name -> fn(clip, other clip) for every metric of the default `eval` config."""
    from ttsframe.eval.asr import build_asr
    from ttsframe.eval.mos import build_mos_predictor
    from ttsframe.eval.signal_metrics import log_f0_rmse, mcd, pesq_score, stoi_score
    from ttsframe.eval.speaker import build_speaker_encoder

    asr = build_asr("faster_whisper", model=None, device="cpu")
    speaker = build_speaker_encoder("resemblyzer", device="cpu")
    dnsmos = build_mos_predictor("dnsmos", looped_windows=dnsmos_windows)
    return {
        "asr (faster-whisper tiny.en, beam 5)": lambda a, b: asr.transcribe([a], EVAL_RATE),
        "speaker embedding (resemblyzer)": lambda a, b: speaker.embed([a], EVAL_RATE),
        f"dnsmos (looped windows: {dnsmos_windows or 'all'})": lambda a, b: dnsmos.score([a], EVAL_RATE),
        "mcd (DTW)": lambda a, b: mcd(a, b, EVAL_RATE),
        "log-F0 RMSE (pyin + DTW)": lambda a, b: log_f0_rmse(a, b, EVAL_RATE),
        "pesq (wb)": lambda a, b: pesq_score(a, a + 0.01 * np.random.default_rng(0).standard_normal(len(a)), EVAL_RATE),
        "stoi": lambda a, b: stoi_score(a, a, EVAL_RATE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="a manifest (jsonl) to take clips from; default: built-in voices")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--dnsmos-windows", type=int, default=1, help="0: every hop (Microsoft's rule)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = manifest_clips(args.manifest, args.clips) if args.manifest else builtin_clips(Path(tmp), args.clips)
    seconds = statistics.median(len(c) / EVAL_RATE for c in clips)
    print(f"{len(clips)} clips, median {seconds:.2f} s of audio")
    for name, fn in metrics(args.dnsmos_windows or None).items():
        fn(clips[0], clips[1 % len(clips)])  # warm-up: imports, model loads, numba compilation
        costs = []
        for i, clip in enumerate(clips):
            began = time.perf_counter()
            fn(clip, clips[(i + 1) % len(clips)])
            costs.append(time.perf_counter() - began)
        print(f"  {name:40s} {statistics.median(costs):6.3f} s per clip")


if __name__ == "__main__":
    main()
