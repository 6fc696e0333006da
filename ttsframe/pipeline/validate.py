"""Checks one corpus candidate: either a manifest `Utterance` or a rejection reason."""

from __future__ import annotations

import math
import os

import numpy as np

from ttsframe.data.audio import audio_info, load_audio
from ttsframe.data.manifest import Candidate, Utterance
from ttsframe.errors import AudioError


def validate(candidate: Candidate, min_duration: float, max_duration: float, silence_db: float) -> Utterance | str:
    """Returns the validated utterance, or the reason it is rejected (one line)."""
    if candidate.problem:
        return candidate.problem
    if not candidate.text or not candidate.text.strip():
        return "empty transcript"
    if not os.path.isfile(candidate.audio):
        return f"audio file not found: {candidate.audio}"
    try:
        info = audio_info(candidate.audio)
    except AudioError as e:
        return _reason(e)
    if info.frames == 0 or info.sample_rate <= 0:
        return "empty audio (0 samples)"
    start = candidate.start or 0.0
    end = candidate.end if candidate.end is not None else info.duration
    if start < 0 or end > info.duration + 1e-3 or end <= start:
        return f"segment [{start}, {end}] s outside the file's {info.duration:.2f} s"
    duration = end - start
    if duration < min_duration:
        return f"too short ({duration:.2f} s < data.min_duration={min_duration})"
    if duration > max_duration:
        return f"too long ({duration:.2f} s > data.max_duration={max_duration})"
    try:
        wav, _ = load_audio(candidate.audio, start=candidate.start, end=candidate.end)
    except AudioError as e:
        return _reason(e)
    if wav.size == 0:
        return "empty audio (0 samples)"
    if not np.isfinite(wav).all():
        return "audio contains NaN or infinite samples"
    peak = float(np.abs(wav).max())
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db <= silence_db:
        return f"silent (peak {peak_db:.1f} dBFS <= data.silence_db={silence_db})"
    return Utterance(
        id=candidate.id,
        audio=os.path.abspath(candidate.audio),
        text=candidate.text.strip(),
        speaker=candidate.speaker,
        duration=round(duration, 4),
        sample_rate=info.sample_rate,
        channels=info.channels,
        start=candidate.start,
        end=candidate.end,
        language=candidate.language,
    )


def _reason(error: AudioError) -> str:
    # AudioError messages start with the path; the rejection line names the file already.
    message = str(error)
    return message.split(": ", 1)[1] if ": " in message else message
