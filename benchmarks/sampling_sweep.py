"""How do a release's sampling options move its intelligibility? Synthesizes the first --items
(target, prompt) pairs of a split, as the synthesize stage pairs them, once per --try, and prints
the WER with the evaluation's default ASR (the bundled Whisper tiny.en) and the length of the
speech against the recordings'.

    python benchmarks/sampling_sweep.py exp/ditar/release exp/ditar/data/test.jsonl \\
        --try "" "nfe=4" "cfg_scale=0" "temperature=0" "temperature=0.5 cfg_scale=2"

A --try is space-separated `field=value` pairs of the release family's sampling-options dataclass
("" is its defaults). Any family's release works (VALL-E, MELLE, CosyVoice, DiTAR).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ttsframe.data.audio import load_audio
from ttsframe.data.manifest import read_manifest
from ttsframe.eval.asr import build_asr
from ttsframe.eval.wer import error_rates
from ttsframe.pipeline.synthesize import pair_prompts, prompt_item
from ttsframe.release import load_release


def parse_try(spec: str, options_class: type):
    """'nfe=4 cfg_scale=0' -> an options instance (values typed like the dataclass's defaults)."""
    defaults = options_class()
    changes = {}
    for pair in spec.split():
        key, _, value = pair.partition("=")
        if not hasattr(defaults, key):
            raise SystemExit(f"--try {spec!r}: {options_class.__name__} has no field {key!r}")
        kind = type(getattr(defaults, key))
        changes[key] = value.lower() in ("1", "true") if kind is bool else kind(value)
    return dataclasses.replace(defaults, **changes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("release", type=Path)
    p.add_argument("manifest", type=Path, help="a split's manifest (exp/<recipe>/data/test.jsonl)")
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--try", dest="tries", nargs="*", default=[""])
    args = p.parse_args()

    synth = load_release(args.release, device="cpu")
    pairs, _ = pair_prompts(read_manifest(args.manifest))
    pairs = pairs[: args.items]
    rate = synth.sample_rate
    items = [prompt_item(t, pr, rate) for t, pr in pairs]
    reference_seconds = sum(load_audio(t.audio, rate, t.start, t.end)[0].size for t, _ in pairs) / rate
    texts = [t.text for t, _ in pairs]
    asr = build_asr("faster_whisper")
    print(f"{args.release} ({synth.FAMILY}): {len(items)} items of {args.manifest}")
    for spec in args.tries:
        options = parse_try(spec, synth.OPTIONS)
        began = time.perf_counter()
        wavs = []
        for start in range(0, len(items), args.batch):
            wavs += synth.synthesize(items[start: start + args.batch], options)
        seconds = time.perf_counter() - began
        rates = error_rates(texts, asr.transcribe(wavs, rate))
        audio = sum(w.size for w in wavs) / rate
        print(f"  {spec or '(defaults)':40s} WER {rates.wer:.3f}  CER {rates.cer:.3f}  "
              f"length {audio / reference_seconds:.2f} x the recordings'  RTF {seconds / audio:.2f}", flush=True)


if __name__ == "__main__":
    main()
