"""Acoustic prompts: cutting a long prompt, and its transcript with it.

A VALL-E prompt is read as [prompt phonemes + target phonemes ; prompt codes], so the model
assumes the prompt audio says exactly the prompt phonemes. When the audio is cut to
`max_seconds`, the transcript must be cut too, or the model first speaks the part of the prompt
text that the audio no longer holds. No alignment is at hand, so both cuts are estimates:

* the audio is cut at the quietest 20 ms frame of the last `search_seconds` before the limit
  (the pause between two words, when there is one);
* the symbols are cut at the word boundary nearest to the same share of the symbols as the kept
  share of the audio (speech rate taken as constant over the utterance).
"""

from __future__ import annotations

import numpy as np

from ttsframe.text import WORD_BOUNDARY

FRAME_SECONDS = 0.02  # the energy frame of the cut search


def quiet_cut(wav: np.ndarray, sample_rate: int, max_seconds: float, search_seconds: float = 0.5) -> int:
    """Where to cut `wav` (T,) to at most `max_seconds`: the centre of the quietest frame in
    [max_seconds - search_seconds, max_seconds]; len(wav) if it is short enough already."""
    limit = int(max_seconds * sample_rate)
    if len(wav) <= limit:
        return len(wav)
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    start = max(0, limit - int(search_seconds * sample_rate))
    n_frames = (limit - start) // frame
    if n_frames < 1:
        return limit
    frames = wav[start: start + n_frames * frame].astype(np.float64).reshape(n_frames, frame)  # (F, frame)
    energy = (frames ** 2).mean(axis=1)
    quietest = int(np.argmin(energy[::-1]))  # the latest of equally quiet frames: keeps the most audio
    return start + (n_frames - 1 - quietest) * frame + frame // 2


def cut_symbols(symbols: list[str], share: float) -> list[str]:
    """The first `share` (0..1) of `symbols`, ending at the nearest word boundary (excluded)."""
    if share >= 1.0:
        return list(symbols)
    target = round(share * len(symbols))
    boundaries = [i for i, s in enumerate(symbols) if s == WORD_BOUNDARY]
    if not boundaries:
        return list(symbols[:target])
    cut = min(boundaries, key=lambda i: (abs(i - target), i))
    return list(symbols[:cut])


def cut_prompt(wav: np.ndarray, sample_rate: int, symbols: list[str],
               max_seconds: float | None) -> tuple[np.ndarray, list[str]]:
    """Cuts a prompt longer than `max_seconds` (None: never) and its symbols to match.

    Args:
        wav: (T,) prompt audio.
        sample_rate: of `wav`.
        symbols: the prompt transcript's symbols (frontend output).
        max_seconds: longest prompt kept.

    Returns:
        wav (T',) with T' <= max_seconds * sample_rate, and the symbols it is taken to say.
    """
    if max_seconds is None or len(wav) <= int(max_seconds * sample_rate):
        return wav, list(symbols)
    cut = quiet_cut(wav, sample_rate, max_seconds)
    return wav[:cut], cut_symbols(symbols, cut / len(wav))


def prepare_prompts(items, frontend, vocab, sample_rate: int, max_seconds: float | None,
                    frames_for, min_frames: int) -> tuple[list[np.ndarray], list]:
    """Each item's prompt audio at `sample_rate`, cut to `max_seconds`, and its transcript's ids.

    Args:
        items: `SynthesisItem`s (prompt_wav, prompt_sample_rate, prompt_text, text).
        frontend, vocab: the text frontend and the model's vocabulary.
        frames_for: num_samples -> feature frames of the synthesizer's codec or mel analysis.
        min_frames: fewest frames a usable prompt has.

    Returns:
        per item the (T_i,) float32 prompt audio and its (Lp_i,) long ids, which end with a word
        boundary (when the vocabulary has one), since the target text follows as a new word.

    Raises:
        UserError: a prompt too short for `min_frames`, or symbols the model never saw.
    """
    from ttsframe.data.audio import resample
    from ttsframe.errors import UserError
    from ttsframe.inference.text import encode_symbols

    wavs, tokens = [], []
    for item, symbols in zip(items, frontend.symbols([item.prompt_text for item in items])):
        wav = resample(np.asarray(item.prompt_wav, dtype=np.float32).reshape(-1), int(item.prompt_sample_rate),
                       sample_rate)
        wav, symbols = cut_prompt(wav, sample_rate, symbols, max_seconds)
        if frames_for(len(wav)) < min_frames:
            raise UserError(f"prompt for {item.text!r} is too short ({len(wav) / sample_rate:.3f} s)")
        if symbols and WORD_BOUNDARY in vocab and symbols[-1] != WORD_BOUNDARY:
            symbols = [*symbols, WORD_BOUNDARY]
        wavs.append(wav)
        tokens.append(encode_symbols(vocab, symbols, item.prompt_text))
    return wavs, tokens
