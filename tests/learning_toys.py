"""Toy tasks whose answer depends on the text, for the learning checks (seconds on one CPU core).

`phoneme_patterns`: each phoneme of a small inventory is spoken as a fixed spectral pattern held for
`frames_per_phoneme` frames; an utterance is a random phoneme string. The frames of a phoneme after
the first one can be copied from the audio so far, but the first frame (or patch) of every new
phoneme can only be known from the text: a model that ignores the text is at chance there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PhonemeToy:
    patterns: torch.Tensor  # (V, M) the spectral pattern of each phoneme id (row 0: padding, unused)
    frames_per_phoneme: int

    @property
    def n_phonemes(self) -> int:
        return self.patterns.shape[0] - 1

    def batch(self, size: int, generator: torch.Generator, min_len: int = 3, max_len: int = 7):
        """text (B, L) ids >= 1, text_lengths (B,), mel (B, T, M), mel_lengths (B,), starts (B, T) bool:
        True at the first frame of each phoneme."""
        lengths = torch.randint(min_len, max_len + 1, (size,), generator=generator)
        text = torch.zeros(size, max_len, dtype=torch.long)
        for row, length in enumerate(lengths.tolist()):
            text[row, :length] = torch.randint(1, self.n_phonemes + 1, (length,), generator=generator)
        f = self.frames_per_phoneme
        mel = self.patterns[text].repeat_interleave(f, dim=1)  # (B, L * f, M)
        starts = torch.zeros(size, max_len * f, dtype=torch.bool)
        starts[:, ::f] = True
        mel_lengths = lengths * f
        starts &= torch.arange(max_len * f)[None] < mel_lengths[:, None]
        return text, lengths, mel, mel_lengths, starts

    def nearest(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., M) frames -> (...) the phoneme id whose pattern is closest."""
        distance = (frames[..., None, :] - self.patterns[1:]).pow(2).sum(-1)  # (..., V - 1)
        return distance.argmin(-1) + 1


def phoneme_patterns(n_phonemes: int = 11, n_mels: int = 8, frames_per_phoneme: int = 8, seed: int = 0) -> PhonemeToy:
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(n_phonemes + 1, n_mels, generator=generator)
    return PhonemeToy(patterns, frames_per_phoneme)


def other_rows(text: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's text replaced by the next row's (the batch rolled by one)."""
    return text.roll(1, 0), lengths.roll(1, 0)
