"""Multi-codebook layouts: how K parallel codebook streams become model steps.

A pattern is two facts about the codes (B, K, T) of a residual codec:

* ``delays``: codebook q is shifted right by ``delays[q]`` steps in the modelled
  sequence, which is therefore ``T + max(delays)`` steps long; positions that hold no code
  (before a codebook's delay, after its last frame, or past a row's length) are invalid and
  filled with a special id.
* ``n_autoregressive``: the first codebooks are predicted step by step in time; each of
  the remaining ones is predicted for all frames at once, one non-autoregressive pass per
  codebook, given the codebooks before it.

The three layouts in use:

    parallel  delays (0, 0, .., 0)    every codebook AR    all K codes of a frame per step
    delay     delays (0, 1, .., K-1)  every codebook AR    MusicGen's staircase
    valle     delays (0, 0, .., 0)    codebook 1 AR only   VALL-E: AR for 1, NAR for 2..K

For K = 3, T = 4, delay:   [[1 2 3 4 S S]      S: invalid (fill id)
                            [S 1 2 3 4 S]
                            [S S 1 2 3 4]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class PatternSequence:
    """The modelled sequence and where it holds real codes."""

    values: torch.Tensor  # (B, K, S) long
    valid: torch.Tensor  # (B, K, S) bool


@dataclass(frozen=True)
class CodebookPattern:
    """A multi-codebook layout; see the module docstring.

    Args:
        name: "parallel", "delay" or "valle" for the built-in ones.
        delays: per-codebook shift, length K, non-negative.
        n_autoregressive: how many leading codebooks are predicted step by step in time.
    """

    name: str
    delays: tuple[int, ...]
    n_autoregressive: int

    def __post_init__(self):
        if not self.delays or min(self.delays) < 0:
            raise ValueError(f"delays must be non-negative, one per codebook: {self.delays}")
        if not 1 <= self.n_autoregressive <= len(self.delays):
            raise ValueError(f"n_autoregressive must be in 1..{len(self.delays)}, got {self.n_autoregressive}")

    @property
    def n_codebooks(self) -> int:
        return len(self.delays)

    def sequence_length(self, n_frames: int) -> int:
        """Length S of the modelled sequence for T frames."""
        return n_frames + max(self.delays)

    def build(
        self, codes: torch.Tensor, frame_lengths: torch.Tensor | None = None, fill_id: int = -1
    ) -> PatternSequence:
        """Lays codes out in the pattern.

        Args:
            codes: (B, K, T) codes.
            frame_lengths: (B,) real frames per row; None: all T.
            fill_id: value at invalid positions.

        Returns:
            values and valid mask, (B, K, T + max(delays)) each.
        """
        batch, n_codebooks, n_frames = self._check(codes)
        frame_valid = _frame_mask(frame_lengths, batch, n_frames, codes.device)  # (B, T)
        length = self.sequence_length(n_frames)
        values = codes.new_full((batch, n_codebooks, length), fill_id)
        valid = torch.zeros(batch, n_codebooks, length, dtype=torch.bool, device=codes.device)
        for q, delay in enumerate(self.delays):
            values[:, q, delay : delay + n_frames] = codes[:, q]
            valid[:, q, delay : delay + n_frames] = frame_valid
        values = values.masked_fill(~valid, fill_id)
        return PatternSequence(values, valid)

    def revert(self, values: torch.Tensor) -> torch.Tensor:
        """Inverse of `build`: (B, K, S) -> codes (B, K, S - max(delays)).

        Positions that were invalid in `build` come back as whatever the sequence holds
        there; use the frame lengths to mask them.
        """
        length = self._check(values)[2]
        n_frames = length - max(self.delays)
        if n_frames < 0:
            raise ValueError(f"sequence of {length} steps is shorter than the largest delay {max(self.delays)}")
        return torch.stack([values[:, q, delay : delay + n_frames] for q, delay in enumerate(self.delays)], dim=1)

    def split(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (B, K, T) -> (autoregressive (B, n_ar, T), non-autoregressive (B, K - n_ar, T))."""
        self._check(codes)
        return codes[:, : self.n_autoregressive], codes[:, self.n_autoregressive :]

    def merge(self, autoregressive: torch.Tensor, non_autoregressive: torch.Tensor) -> torch.Tensor:
        """Inverse of `split`."""
        codes = torch.cat([autoregressive, non_autoregressive], dim=1)
        self._check(codes)
        return codes

    def _check(self, codes: torch.Tensor) -> tuple[int, int, int]:
        if codes.dim() != 3 or codes.shape[1] != self.n_codebooks:
            raise ValueError(f"{self.name} pattern expects (B, {self.n_codebooks}, T), got {tuple(codes.shape)}")
        return tuple(codes.shape)


def _frame_mask(frame_lengths: torch.Tensor | None, batch: int, n_frames: int, device) -> torch.Tensor:
    if frame_lengths is None:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    return torch.arange(n_frames, device=device)[None] < frame_lengths.to(device)[:, None]  # (B, T)


def parallel_pattern(n_codebooks: int) -> CodebookPattern:
    return CodebookPattern("parallel", (0,) * n_codebooks, n_autoregressive=n_codebooks)


def delay_pattern(n_codebooks: int) -> CodebookPattern:
    return CodebookPattern("delay", tuple(range(n_codebooks)), n_autoregressive=n_codebooks)


def valle_pattern(n_codebooks: int) -> CodebookPattern:
    return CodebookPattern("valle", (0,) * n_codebooks, n_autoregressive=1)


PATTERNS: dict[str, Callable[[int], CodebookPattern]] = {
    "parallel": parallel_pattern,
    "delay": delay_pattern,
    "valle": valle_pattern,
}


def get_pattern(name: str, n_codebooks: int) -> CodebookPattern:
    """The named pattern for K codebooks; an unknown name lists the valid ones."""
    if name not in PATTERNS:
        raise ValueError(f"unknown codebook pattern {name!r}; valid: {', '.join(PATTERNS)}")
    return PATTERNS[name](n_codebooks)
