"""The SpeechTokenizer interface: waveform -> discrete content tokens (no decoder of its own).

A speech tokenizer's tokens carry what was said, not how it sounded; a flow-matching or codec
decoder elsewhere turns them back into audio. Used like a codec's encoder:

    tokenizer = ...                               # e.g. ttsframe.tokenizers.s3_asr.S3AsrTokenizer
    ids = tokenizer.encode(wav, lengths)          # (B, T_tok); trim row i to frames_for(lengths[i])
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class SpeechTokenizer(Protocol):
    """What every speech tokenizer provides.

    With `lengths`, row i of `encode`'s output is valid for its first `frames_for(lengths[i])`
    tokens and those equal the tokens of row i encoded alone; the tokens after that are padding.
    """

    sample_rate: int  # Hz of the waveforms it takes
    frame_rate: float  # tokens per second
    vocab_size: int  # ids are in [0, vocab_size)

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) float at `sample_rate`, lengths (B,) samples -> ids (B, T_tok) long."""
        ...

    def frames_for(self, num_samples: int) -> int:
        """Number of tokens `encode` yields for a waveform of `num_samples` samples (exact)."""
        ...
