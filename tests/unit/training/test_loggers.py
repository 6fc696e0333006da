"""Experiment loggers: wandb offline without credentials, CSV when a backend fails to start."""

import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from ttsframe.training import loggers


def test_wandb_runs_offline_in_the_stage_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = loggers.build_logger("wandb", tmp_path, project="test", name="valle/train_ar")
    try:
        assert isinstance(logger, WandbLogger)
        assert logger.experiment.settings.mode == "offline"
        run_id = (tmp_path / "logs" / "wandb_run_id").read_text().strip()
        assert logger.experiment.id == run_id  # the same run id when the stage resumes
    finally:
        logger.experiment.finish()


def test_a_failing_backend_falls_back_to_csv(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("no wandb today")

    monkeypatch.setattr(loggers, "WandbLogger", broken)
    logger = loggers.build_logger("wandb", tmp_path)
    assert isinstance(logger, CSVLogger)
    assert "wandb failed to start" in capsys.readouterr().out


def test_csv_tensorboard_and_unknown(tmp_path):
    assert isinstance(loggers.build_logger("csv", tmp_path), CSVLogger)
    assert isinstance(loggers.build_logger("tensorboard", tmp_path), TensorBoardLogger)
    with pytest.raises(ValueError, match="wandb, csv, tensorboard"):
        loggers.build_logger("mlflow", tmp_path)


def test_offline_unless_logged_in(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert not loggers.wandb_logged_in()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert loggers.wandb_logged_in()
