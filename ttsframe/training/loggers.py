"""The experiment logger of a train stage: wandb (offline unless logged in), CSV or TensorBoard.

Logs live under `<stage dir>/logs/`. A logger that fails to start (wandb not installed, a bad
API key, no disk space for its folder) is replaced by CSV, with a printed note: logging must
never stop a training run.
"""

from __future__ import annotations

import netrc
import os
import uuid
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

LOGGERS = ("wandb", "csv", "tensorboard")


def wandb_logged_in() -> bool:
    """True when wandb has credentials: WANDB_API_KEY, or an api.wandb.ai entry in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_run_id(log_dir: Path) -> str:
    """A run id kept in the stage folder, so a resumed training continues the same wandb run."""
    path = log_dir / "wandb_run_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    log_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def _wandb(log_dir: Path, project: str, name: str) -> WandbLogger:
    mode = os.environ.get("WANDB_MODE")  # the user's choice (online, offline, disabled) wins
    offline = mode is None and not wandb_logged_in()
    logger = WandbLogger(project=project, name=name, save_dir=str(log_dir), id=wandb_run_id(log_dir),
                         resume="allow", offline=offline)
    _ = logger.experiment  # start it now, so a failure falls back to CSV before training starts
    return logger


def build_logger(kind: str, stage_dir: Path, project: str = "ttsframe", name: str = "run") -> Logger:
    """The logger named `kind` writing under `<stage_dir>/logs`; CSV when it cannot start.

    Args:
        kind: one of LOGGERS.
        stage_dir: the train stage's folder.
        project: wandb project.
        name: run name (wandb) shown in the UI, e.g. "valle/train_ar".
    """
    if kind not in LOGGERS:
        raise ValueError(f"unknown logger {kind!r}; valid: {', '.join(LOGGERS)}")
    log_dir = Path(stage_dir) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "wandb":
            return _wandb(log_dir, project, name)
        if kind == "tensorboard":
            return TensorBoardLogger(save_dir=str(log_dir), name="tensorboard")
    except Exception as e:  # noqa: BLE001 - any failure of a logger backend
        print(f"logger: {kind} failed to start ({type(e).__name__}: {e}); logging to CSV in {log_dir / 'csv'}")
    return CSVLogger(save_dir=str(log_dir), name="csv")
