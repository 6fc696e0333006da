"""Per-band statistics of log-mel frames for the mel families' normalisation, the shards they come
from, and what the mel families' tasks (MELLE, DiTAR) do with them when training starts."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_only

from ttsframe.data.dataset import ShardStream

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


def check_mel_data(task, data, name: str) -> None:
    """Fails unless the shards (a shard data module) hold `task.FEATURE` frames of the model's
    `n_mels` bins; records the `MelConfig` fields their index holds in `task.hparams.mel` (unless
    set). `name`: the model's, in messages ("MELLE")."""
    if data.feature != task.FEATURE:
        raise ValueError(f"{data.shard_dir}: the shards hold `{data.feature}`, {name} needs mel frames (codec=mel)")
    mel = data.codec.get("mel")
    bins, n_mels = (mel or {}).get("n_mels", data.codec.get("dim")), task.model.config.n_mels
    if bins is not None and int(bins) != n_mels:
        raise ValueError(f"{data.shard_dir}: the shards have {bins} mel bins, the model {n_mels}")
    if mel is not None and task.hparams.mel is None:
        task.hparams["mel"] = dict(mel)


def fit_shard_mel_stats(model, shard_dir: str | Path, split: str, utterances: int, family: str) -> None:
    """Sets `model`'s mel statistics (`set_mel_stats`) from the split's first `utterances`
    utterances in index order: the same on every rank, independent of the seed."""
    stream = ShardStream(shard_dir, split, rank=0, world_size=1)
    items = itertools.islice(iter(stream), utterances)
    mean, std, frames = mel_statistics(item["mel"] for item in items)
    device = model.mel_mean.device
    model.set_mel_stats(mean.to(device), std.to(device))
    _print(f"{family}: mel statistics from {frames} frames of {shard_dir}/{split} "
           f"(mean {float(mean.mean()):.2f}, std {float(std.mean()):.2f} on average over bins)")


def start_mel_training(task) -> None:
    """`on_fit_start` of a task over mel shards: checks the shards (`task.check_data`), then fits
    the mel statistics from `task.hparams.stats_utterances` training utterances, unless the model
    has them (a resumed run, or set by hand)."""
    data = shard_data(task.trainer.datamodule) if task._trainer is not None else None
    if data is not None:
        task.check_data(data)
    if bool(task.model.mel_stats_fitted):
        return
    if data is None:
        warnings.warn(f"{type(task).__name__}: no training shards to compute mel statistics from and none set "
                      "(model.set_mel_stats); training on unnormalised log-mel")
        return
    fit_shard_mel_stats(task.model, data.shard_dir, data.splits["train"], task.hparams.stats_utterances, task.FAMILY)


@rank_zero_only
def _print(message: str) -> None:
    print(message)
