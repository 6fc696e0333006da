"""Per-band statistics of log-mel frames for the mel families' normalisation, and the shards they come from."""

from __future__ import annotations

import torch

MIN_MEL_STD = 0.1  # floor of the per-bin std (log units): a bin that never moves is not blown up


def mel_statistics(mels, min_std: float = MIN_MEL_STD) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-bin mean and std over all frames of (T_i, M) log-mels; returns (mean, std, frames)."""
    total = square = None
    frames = 0
    for mel in mels:
        mel = mel.double()
        total = mel.sum(0) if total is None else total + mel.sum(0)
        square = mel.pow(2).sum(0) if square is None else square + mel.pow(2).sum(0)
        frames += mel.shape[0]
    if not frames:
        raise ValueError("no mel frames to compute statistics from")
    mean = total / frames
    std = (square / frames - mean.pow(2)).clamp(min=0).sqrt().clamp(min=min_std)
    return mean.float(), std.float(), frames


def shard_data(datamodule) -> object | None:
    """The shard data module behind the trainer's (possibly wrapped, e.g. `ResumableData`)."""
    while datamodule is not None and not hasattr(datamodule, "shard_dir"):
        datamodule = getattr(datamodule, "data", None)
    return datamodule
