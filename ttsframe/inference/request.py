"""What a synthesis request is, and the prompt and decoding limits every family's synthesizer uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_PROMPT_SECONDS = 3.0  # the paper's 3-second enrolment
PROMPT_BATCH_SECONDS = 600.0  # padded prompt audio per codec.encode call
MIN_DECODE_FRAMES = 16  # shorter code sequences are padded for codec.decode, then trimmed


@dataclass
class SynthesisItem:
    """One zero-shot request.

    Attributes:
        text: what to say.
        prompt_wav: (T,) mono float audio of the voice to imitate.
        prompt_sample_rate: Hz of `prompt_wav` (resampled to the codec's rate).
        prompt_text: the transcript of `prompt_wav`.
    """

    text: str
    prompt_wav: np.ndarray
    prompt_sample_rate: int
    prompt_text: str
