"""Callbacks of the train stage: `last.ckpt` (periodic and final), kept `step<N>.ckpt` snapshots, and
`summary.json` at the end."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from ttsframe.utils.atomic import write_json


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt` every `every_n_train_steps` and at the end of training.

    (`ModelCheckpoint(save_last=True)` alone skips the end of training when no periodic save is due
    then.) Not on an exception: a checkpoint taken mid-step could not resume exactly.
    """

    def __init__(self, dirpath: Path, every_n_train_steps: int):
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, every_n_train_steps=every_n_train_steps,
                         enable_version_counter=False)

    def save_now(self, trainer: L.Trainer) -> None:
        """`last.ckpt` now (call it at a step boundary), as a periodic save writes it."""
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save_now(trainer)


class Snapshots(ModelCheckpoint):
    """`step<N>.ckpt` every `every_n_train_steps` steps, all kept (a curve of the model against the step)."""

    def __init__(self, dirpath: Path, every_n_train_steps: int):
        super().__init__(dirpath=dirpath, filename="step{step}", save_top_k=-1, every_n_train_steps=every_n_train_steps,
                         auto_insert_metric_name=False, enable_version_counter=False)

    @property
    def state_key(self) -> str:  # distinct from LastCheckpoint's at the same interval
        return self._generate_state_key(kind="snapshots", every_n_train_steps=self._every_n_train_steps)


class TrainSummary(L.Callback):
    """Keeps the last training loss (rank 0's), the best validation loss and the time spent training
    (across restarts: it is saved in the checkpoint); rank 0 writes them to `path` at the end.

    Args:
        path: the summary file (`<stage dir>/summary.json`).
        val_key: the logged validation loss.
    """

    def __init__(self, path: Path, val_key: str = "val/loss"):
        self.path, self.val_key = Path(path), val_key
        self.last_train_loss: float | None = None
        self._last_loss = None  # the tensor; read at the end only (float() would sync the GPU every step)
        self.best_val_loss: float | None = None
        self.seconds_before = 0.0  # training time of earlier runs, restored from the checkpoint
        self.started = time.time()

    def on_train_start(self, trainer, pl_module) -> None:
        self.started = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._last_loss = loss.detach()

    def _sync_loss(self) -> None:
        if self._last_loss is not None:
            self.last_train_loss, self._last_loss = float(self._last_loss), None

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.val_key)
        if value is None or trainer.sanity_checking or not math.isfinite(float(value)):
            return
        if self.best_val_loss is None or float(value) < self.best_val_loss:
            self.best_val_loss = float(value)

    def seconds(self) -> float:
        return self.seconds_before + time.time() - self.started

    def state_dict(self) -> dict:
        self._sync_loss()
        return {"last_train_loss": self.last_train_loss, "best_val_loss": self.best_val_loss,
                "seconds": self.seconds()}

    def load_state_dict(self, state: dict) -> None:
        self.last_train_loss, self.best_val_loss = state["last_train_loss"], state["best_val_loss"]
        self.seconds_before = float(state["seconds"])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync_loss()
        if trainer.is_global_zero:
            write_json(self.path, {
                "global_step": trainer.global_step, "last_train_loss": self.last_train_loss,
                "best_val_loss": self.best_val_loss, "train_seconds": round(self.seconds(), 2),
                "world_size": trainer.world_size,
            })
