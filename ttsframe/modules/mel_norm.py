"""Per-band log-mel standardisation whose statistics travel with a model's weights.

A model that works on (mel - mean) / std registers the buffers ``mel_mean``, ``mel_std`` (n_mels,)
and ``mel_stats_fitted`` with `register_mel_stats` (identity, not fitted), and its
`set_mel_stats` / `normalize` / `denormalize` call the functions here. The buffer names are part
of the checkpoint contract of the mel-frame families (MELLE, DiTAR).
"""

from __future__ import annotations

import torch
from torch import nn


def register_mel_stats(module: nn.Module, n_mels: int) -> None:
    """Adds the buffers mel_mean = 0, mel_std = 1 (n_mels,) and mel_stats_fitted = False."""
    module.register_buffer("mel_mean", torch.zeros(n_mels))
    module.register_buffer("mel_std", torch.ones(n_mels))
    module.register_buffer("mel_stats_fitted", torch.tensor(False))


def set_mel_stats(module: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Sets the per-bin statistics, (n_mels,) each, std > 0, and marks them fitted."""
    if mean.shape != module.mel_mean.shape or std.shape != module.mel_std.shape:
        raise ValueError(f"mel stats need shape ({module.mel_mean.numel()},), "
                         f"got {tuple(mean.shape)}, {tuple(std.shape)}")
    if not bool((std > 0).all()):
        raise ValueError("mel std must be positive")
    module.mel_mean.copy_(mean)
    module.mel_std.copy_(std)
    module.mel_stats_fitted.fill_(True)


def normalize(module: nn.Module, mel: torch.Tensor) -> torch.Tensor:
    """(..., M) log-mel -> standardised."""
    return (mel - module.mel_mean) / module.mel_std


def denormalize(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(..., M) standardised -> log-mel."""
    return x * module.mel_std + module.mel_mean
