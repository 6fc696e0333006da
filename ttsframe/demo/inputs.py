"""The checks of what a user enters; each failure is an `InputError` whose message the page shows.

    text         not empty
    prompt       readable audio, at least MIN_PROMPT_SECONDS long, not silent (peak < SILENCE_PEAK)
    transcript   given, or the bundled ASR's (`prepare_request`'s `transcribe`)
    symbols      per release: every symbol of the text and the transcript in its vocabulary,
                 as its frontend makes them (`frontend.symbols`, then `vocab`), naming the others
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ttsframe.errors import UserError

MIN_PROMPT_SECONDS = 1.0
SILENCE_PEAK = 1e-3  # -60 dBFS: quieter prompts are taken as silence


class InputError(UserError):
    """Bad input: the message is for the page."""


@dataclass
class Request:
    """One checked request: the target text, the prompt (T,) float32 at sample_rate, its transcript."""

    text: str
    wav: np.ndarray
    sample_rate: int
    transcript: str


def check_text(text: str | None) -> str:
    """The target text, stripped; InputError when there is nothing to say."""
    text = (text or "").strip()
    if not text:
        raise InputError("Enter the text to say: the text box is empty.")
    return text


def read_prompt(audio) -> tuple[np.ndarray, int]:
    """The voice prompt as mono float32 (T,) and its rate, from a file path or Gradio's
    (sample_rate, (T,) or (T, C) array) pair.

    Raises:
        InputError: no prompt, or a file that is not audio.
    """
    from ttsframe.data.audio import load_audio

    if audio is None or (isinstance(audio, str) and not audio):
        raise InputError("Give a voice prompt: upload a recording or record one with the microphone.")
    if isinstance(audio, (str, Path)):
        try:
            return load_audio(str(audio))
        except UserError:
            raise InputError(f"The voice prompt {Path(audio).name!r} is not audio this demo can read "
                             "(use wav, flac, ogg or mp3).") from None
    rate, data = audio
    data = np.asarray(data)
    if data.dtype.kind in "iu":  # PCM: scale to [-1, 1]
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    data = data.astype(np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)  # (T, C) -> (T,)
    if data.ndim != 1:
        raise InputError(f"The voice prompt has an unexpected shape {data.shape}.")
    return np.ascontiguousarray(data), int(rate)


def check_prompt(wav: np.ndarray, sample_rate: int) -> None:
    """InputError when the prompt (T,) is shorter than MIN_PROMPT_SECONDS or silent."""
    seconds = len(wav) / sample_rate if sample_rate > 0 else 0.0
    if seconds < MIN_PROMPT_SECONDS:
        raise InputError(f"The voice prompt is too short ({seconds:.2f} s): give at least "
                         f"{MIN_PROMPT_SECONDS:g} s of speech (3 to 10 s works best).")
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if not np.isfinite(peak) or peak < SILENCE_PEAK:
        raise InputError("The voice prompt is silent: record or upload one in which the voice is heard.")


def unknown_symbols(frontend, vocab, text: str) -> list[str]:
    """The symbols of `text` (as `frontend` makes them) that `vocab` lacks, sorted."""
    [symbols] = frontend.symbols([text])
    return sorted({s for s in symbols if s not in vocab})


def check_symbols(synthesizer, text: str, what: str = "The text") -> None:
    """InputError naming the symbols of `text` that the synthesizer's vocabulary lacks, or when
    its frontend leaves nothing to say."""
    [symbols] = synthesizer.frontend.symbols([text])
    if not symbols:
        raise InputError(f"{what} has nothing to say (no symbols after normalization).")
    unknown = sorted({s for s in symbols if s not in synthesizer.vocab})
    if unknown:
        raise InputError(f"{what} has symbols this release's vocabulary lacks: {', '.join(map(repr, unknown))}. "
                         "Rephrase or spell them out.")


def prepare_request(text: str | None, audio, transcript: str | None,
                    transcribe: Callable[[np.ndarray, int], str]) -> Request:
    """Checks the inputs shared by every release; an empty transcript is `transcribe(wav, rate)`'s.

    Raises:
        InputError: see the module docstring (symbols are checked per release: `check_symbols`).
    """
    text = check_text(text)
    wav, rate = read_prompt(audio)
    check_prompt(wav, rate)
    transcript = (transcript or "").strip()
    if not transcript:
        transcript = (transcribe(wav, rate) or "").strip()
        if not transcript:
            raise InputError("The ASR heard no words in the voice prompt: type its transcript.")
    return Request(text, wav, rate, transcript)
