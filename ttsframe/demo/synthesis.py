"""One release's answer to a checked request: the audio, how long it is and how fast it came."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ttsframe.demo.inputs import InputError, Request, check_symbols
from ttsframe.demo.releases import DemoRelease
from ttsframe.errors import UserError
from ttsframe.inference import SynthesisItem


@dataclass
class Result:
    """wav: (T,) float32 at sample_rate; compute_seconds: wall clock of `synthesize`;
    parts: its seconds per part (`last_timings`), when the synthesizer records them;
    first_audio_seconds, chunks: a stream's latency to its first chunk and its chunk count."""

    wav: np.ndarray
    sample_rate: int
    compute_seconds: float
    parts: dict
    first_audio_seconds: float | None = None
    chunks: int = 0

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate

    @property
    def rtf(self) -> float:
        """Compute seconds per audio second (inf for empty audio)."""
        return self.compute_seconds / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One markdown line: duration, compute time, RTF, the parts and a stream's first-audio latency."""
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in self.parts.items())
        first = "" if self.first_audio_seconds is None else (
            f"; first audio after **{self.first_audio_seconds:.2f} s** ({self.chunks} chunks streamed)")
        return (f"**{self.seconds:.2f} s** of audio at {self.sample_rate} Hz in {self.compute_seconds:.2f} s: "
                f"**RTF {self.rtf:.2f}**" + (f" ({parts})" if parts else "") + first)


def checked_item(synth, request: Request) -> SynthesisItem:
    """The request as a `SynthesisItem`, once its text and transcript fit the vocabulary (InputError if not)."""
    check_symbols(synth, request.text, "The text")
    check_symbols(synth, request.transcript, "The prompt's transcript")
    return SynthesisItem(request.text, request.wav, request.sample_rate, request.transcript)


def synthesize(release: DemoRelease, request: Request, options) -> Result:
    """Checks the text and transcript against the release's vocabulary, then synthesizes.

    Raises:
        InputError: symbols the vocabulary lacks, or what the synthesizer refuses (UserError).
    """
    synth = release.synthesizer
    item = checked_item(synth, request)
    began = time.perf_counter()
    try:
        [wav] = synth.synthesize([item], options)
    except UserError as e:
        raise InputError(str(e)) from None
    compute = time.perf_counter() - began
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    return Result(wav, int(synth.sample_rate), compute, dict(getattr(synth, "last_timings", None) or {}))
