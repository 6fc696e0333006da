"""Exact resume: a run killed after step N and resumed reaches the weights of an uninterrupted run.

Lightning restores the weights, the optimizer, the scheduler and the loop counters. What it does
not restore is where the data stream was and the random state, so:

* Data position. The training stream is a deterministic function of (seed, rank, worker), and
  `DataPosition` counts the batches trained on (saved with the checkpoint). After a restore the
  training loader replays the stream and drops that many batches before the first one it yields.
  Replaying costs data-loading time only (no model work).
* Randomness. Before every training batch `DataPosition` re-seeds torch from (seed, rank, batch
  number), so dropout and any other draw depends on where the run is, not on its history.

Checkpoints are taken at optimizer-step boundaries (see `ttsframe.training.trainer`; a SLURM
preemption too, `ttsframe.training.preemption`), so the batch count is always a whole number of
steps. Lightning's signal-time `hpc_ckpt_*.ckpt` (earlier versions wrote them) may be mid-step:
they are never resumed from.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch


def mixed_seed(*numbers: int) -> int:
    """A 63-bit seed that depends on every number (non-negative ints), well mixed."""
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(1, np.uint64)[0] >> 1)


class SkipFirst:
    """Iterates `loader` without its first `skip` batches (read and dropped, not trained on)."""

    def __init__(self, loader, skip: int):
        self.loader, self.skip = loader, skip

    def __iter__(self) -> Iterator[Any]:
        iterator = iter(self.loader)
        for _ in range(self.skip):
            next(iterator)
        return iterator


class DataPosition(L.Callback):
    """Counts training batches into the checkpoint; re-seeds torch before each one.

    Args:
        seed: base seed of the run.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self.batches = 0  # training batches consumed so far (all runs of this training together)
        self.restored = 0  # batches consumed when the run restarted from a checkpoint

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(mixed_seed(self.seed, trainer.global_rank, self.batches))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.batches += 1

    def state_dict(self) -> dict:
        return {"batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.batches = self.restored = int(state["batches"])

    def wrap(self, loader) -> SkipFirst:
        """The training loader, positioned after the batches already consumed."""
        if self.restored:
            print(f"resume: skipping the {self.restored} training batches already trained on")
        return SkipFirst(loader, self.restored)


class ResumableData(L.LightningDataModule):
    """Wraps a data module so its training loader starts at `position`; other loaders unchanged.

    Args:
        data: a `LightningDataModule` whose training stream is deterministic (e.g. ShardDataModule).
        position: the run's `DataPosition` callback (pass it to the Trainer too).
    """

    def __init__(self, data: L.LightningDataModule, position: DataPosition):
        super().__init__()
        self.data, self.position = data, position

    def _attach(self) -> L.LightningDataModule:
        self.data.trainer = self.trainer  # ranks come from the trainer
        return self.data

    def train_dataloader(self):
        return self.position.wrap(self._attach().train_dataloader())

    def val_dataloader(self):
        return self._attach().val_dataloader()

    def test_dataloader(self):
        return self._attach().test_dataloader()


def find_resume_checkpoint(stage_dir: Path) -> Path | None:
    """`checkpoints/last.ckpt`, or None. Lightning's `hpc_ckpt_*.ckpt` in the stage folder, which
    it would resume from by itself, are moved into `hpc_checkpoints/` (see the module docstring)."""
    stage_dir = Path(stage_dir)
    hpc = sorted(stage_dir.glob("hpc_ckpt_*.ckpt"))
    if hpc:
        aside = stage_dir / "hpc_checkpoints"
        aside.mkdir(exist_ok=True)
        for path in hpc:
            with contextlib.suppress(FileNotFoundError):  # another rank moved it
                path.rename(aside / path.name)
        print(f"resume: moved {len(hpc)} hpc_ckpt file(s) (possibly taken mid-step) to {aside}; not resuming from them")
    last = stage_dir / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None


def read_checkpoint_meta(path: Path) -> dict:
    """{"global_step", "hyper_parameters"} of a Lightning checkpoint (tensors are not read)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return {"global_step": int(checkpoint["global_step"]), "hyper_parameters": checkpoint.get("hyper_parameters", {})}


def set_aside(stage_dir: Path) -> Path | None:
    """Moves the checkpoints of an earlier training (`checkpoints/*`, `hpc_ckpt_*.ckpt`) and its
    wandb run id into `checkpoints.<n>/`, so the next training starts from scratch (and a new
    wandb run); returns that folder."""
    stage_dir = Path(stage_dir)
    ckpt_dir = stage_dir / "checkpoints"
    old = [*(ckpt_dir.iterdir() if ckpt_dir.is_dir() else []), *stage_dir.glob("hpc_ckpt_*.ckpt"),
           *stage_dir.glob("hpc_checkpoints/*.ckpt")]
    if not old:
        return None
    n = 1
    while (stage_dir / f"checkpoints.{n}").exists():
        n += 1
    target = stage_dir / f"checkpoints.{n}"
    target.mkdir()
    for path in [*old, stage_dir / "logs" / "wandb_run_id"]:
        if path.exists():
            path.rename(target / path.name)
    return target


_TRAIN_STREAM, _VAL_STREAM = 0, 1


def step_generator(task, split: str, batch_idx: int) -> "torch.Generator":
    """A generator for a step's random choices, seeded by (seed, rank, step, micro-batch) in
    training and (seed, rank, batch index) in validation: independent of the run's history, so
    exact resume holds, and every validation pass draws the same numbers."""
    import torch

    if split == "train":
        accumulate = task.trainer.accumulate_grad_batches if task._trainer is not None else 1
        numbers = (_TRAIN_STREAM, task.global_step, batch_idx % accumulate)
    else:
        numbers = (_VAL_STREAM, batch_idx)
    seed = mixed_seed(task.hparams.seed, task.global_rank, *numbers)
    return torch.Generator(device=task.device).manual_seed(seed)
