"""The train stage's torch thread count: from trainer.threads, else SLURM's cpus-per-task, else torch's."""

import pytest
import torch

from ttsframe.errors import ConfigError
from ttsframe.training.threads import intra_op_threads, training_threads


def test_the_configured_count_wins_over_slurm(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert intra_op_threads(2) == (2, "trainer.threads")


def test_under_slurm_the_job_cpus_decide(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert intra_op_threads(None) == (3, "SLURM_CPUS_PER_TASK")


def test_elsewhere_torch_keeps_its_count(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert intra_op_threads(None) == (torch.get_num_threads(), "torch default")


def test_a_count_below_one_is_refused():
    with pytest.raises(ConfigError, match="trainer.threads must be >= 1"):
        intra_op_threads(0)


def test_the_block_runs_on_the_count_and_restores_the_callers(capsys):
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    with training_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    assert f"train: torch threads {wanted} intra-op (trainer.threads)" in capsys.readouterr().out
