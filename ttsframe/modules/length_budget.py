"""Output length bounds tied to the target text, shared by the autoregressive frame families."""

from __future__ import annotations

import torch


def frame_budget(n_tokens: torch.Tensor, frames_per_token: float) -> torch.Tensor:
    """The most frames a row may generate: ceil(tokens x frames_per_token), (B,) -> (B,) long, >= 1."""
    return torch.ceil(n_tokens.to(torch.float64) * frames_per_token).long().clamp(min=1)


def frame_floor(n_tokens: torch.Tensor, frames_per_token: float, min_frames: int) -> torch.Tensor:
    """Frames before a stop is allowed: floor(tokens x frames_per_token), at least min_frames, (B,) -> (B,) long."""
    return torch.floor(n_tokens.to(torch.float64) * frames_per_token).long().clamp(min=min_frames)
