"""`curves.json` of a train stage: its logged losses and accuracies against the step, for the report.

Independent of the logger (wandb, csv, tensorboard): `TrainingCurves` keeps the points itself, in
the checkpoint's callback state, so a resumed run continues the curve exactly where its checkpoint
was taken (no repeated or missing points), and rank 0 rewrites the file atomically at each
validation and at the end:

    {"train": [{"step": 10, "train/loss": 4.1, "train/accuracy": 0.2, ...}, ...],
     "val": [{"step": 300, "val/loss": 3.9, "val/text_reliance": 0.01, ...}, ...]}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L

from ttsframe.utils.atomic import write_json

FILE = "curves.json"


def _scalars(metrics: dict, prefix: str | tuple[str, ...]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if key.startswith(prefix) and getattr(value, "numel", lambda: 1)() == 1:
            number = float(value)
            if math.isfinite(number):
                out[key] = round(number, 6)
    return out


class TrainingCurves(L.Callback):
    """Every `every` steps the logged `train/*` and `grad/*` scalars (and the step's loss as `train/loss` when the
    task logs none), after every validation the `val/*` scalars; written to `path` (see module)."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), max(1, int(every))
        self.train: list[dict] = []
        self.val: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every:
            return
        point = _scalars(trainer.callback_metrics, ("train/", "grad/"))  # grad/: `ttsframe.training.grad_norms`
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if "train/loss" not in point and loss is not None and math.isfinite(float(loss)):
            point["train/loss"] = round(float(loss), 6)
        if point:
            self.train.append({"step": step, **point})

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        point = _scalars(trainer.callback_metrics, "val/")
        if point:
            self.val = [p for p in self.val if p["step"] != trainer.global_step] + [{"step": trainer.global_step,
                                                                                     **point}]
            self._write(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer)

    def _write(self, trainer) -> None:
        if trainer.is_global_zero:
            write_json(self.path, {"train": self.train, "val": self.val})

    def state_dict(self) -> dict:
        return {"train": self.train, "val": self.val}

    def load_state_dict(self, state: dict) -> None:
        self.train, self.val = list(state["train"]), list(state["val"])


def read_curves(stage_dir: Path) -> dict | None:
    """A train stage's curves.json, or None when it has none (an older run, or not trained yet)."""
    path = Path(stage_dir) / FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
