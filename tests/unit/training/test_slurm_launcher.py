"""launcher=slurm: the sbatch script, the command it runs, and what the stage does without SLURM."""

import shlex
import sys

import pytest

from ttsframe.config import load_run_config
from ttsframe.errors import UserError
from ttsframe.pipeline.runner import run_recipe
from ttsframe.training import slurm


def config(tmp_path, *extra):
    return load_run_config("valle", [f"exp_dir={tmp_path}", "launcher=slurm", "trainer=gpu8",
                                     "trainer.num_nodes=4", "launcher.partition=gpu", "launcher.account=tts",
                                     "launcher.submit=false", "model.optim.lr=1e-4", *extra])


def test_sbatch_script_asks_for_the_trainer_shape_and_requeue(tmp_path):
    cfg = config(tmp_path, "launcher.setup=[module load cuda]", "launcher.extra_sbatch=[--exclusive]")
    summary = slurm.launch(cfg, 2, "train_ar", tmp_path / "train_ar")
    assert summary["pending"] and summary["job_id"] is None
    text = (tmp_path / "train_ar" / "slurm.sbatch").read_text()
    sbatch = [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH")]
    assert text.startswith("#!/bin/bash\n")
    for option in ("--job-name=valle-train_ar", "--nodes=4", "--ntasks-per-node=8", "--gpus-per-node=8",
                   "--cpus-per-task=8", "--time=48:00:00", "--partition=gpu", "--account=tts",
                   "--signal=SIGUSR1@90", "--requeue", "--open-mode=append", "--exclusive",
                   f"--output={(tmp_path / 'train_ar').resolve()}/slurm-%j.out"):
        assert option in sbatch, option
    assert not any(o.startswith(("--qos", "--mem")) for o in sbatch)  # unset: left to the cluster
    body = text.split("set -eo pipefail\n")[1].splitlines()
    assert body[1] == "module load cuda"

    srun = shlex.split(body[-1])
    assert srun[:4] == ["srun", sys.executable, "-m", "ttsframe"]
    args = srun[4:]
    assert args[:2] == ["run", "valle"] and args[-4:] == ["--stage", "2", "--stop-stage", "2"]
    overrides = args[2:-4]
    assert overrides[-1] == "launcher=local"
    assert not any(o.startswith("launcher") for o in overrides[:-1])  # slurm settings stay out of the job
    assert {"trainer=gpu8", "trainer.num_nodes=4", "model.optim.lr=1e-4", f"exp_dir={tmp_path}"} <= set(overrides)


def test_the_job_command_rebuilds_the_same_config(tmp_path):
    cfg = config(tmp_path)
    args = slurm.stage_args(cfg, 3)
    job = load_run_config(args[1], args[2:-4])
    assert job.launcher.name == "local"
    for group in ("model", "trainer", "data", "codec", "text"):
        assert job[group] == cfg[group], group


def test_no_requeue_and_cpu_jobs(tmp_path):
    cfg = config(tmp_path, "launcher.requeue=false", "trainer.accelerator=cpu", "trainer.devices=2")
    text = slurm.sbatch_script(cfg.launcher, cfg.trainer, "j", tmp_path, ["python"], tmp_path)
    assert "--requeue" not in text and "--signal" not in text and "--gpus-per-node" not in text
    assert "--ntasks-per-node=2" in text
    with pytest.raises(UserError, match="trainer.devices"):
        slurm.sbatch_script(cfg.launcher, config(tmp_path, "trainer.devices=auto").trainer, "j", tmp_path, [], tmp_path)


def test_runner_leaves_submitted_stages_unmarked(tmp_path, capsys):
    summaries = run_recipe(config(tmp_path), 2, 3)
    assert [s["name"] for s in summaries] == ["train_ar", "train_nar"] and all(s["pending"] for s in summaries)
    assert (tmp_path / "train_nar" / "slurm.sbatch").is_file()
    assert not (tmp_path / ".done").exists() or not any((tmp_path / ".done").iterdir())


def test_submit_without_sbatch_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="sbatch.*not on PATH.*launcher.submit=false"):
        slurm.launch(config(tmp_path, "launcher.submit=true"), 2, "train_ar", tmp_path)
    assert (tmp_path / "slurm.sbatch").is_file()


def test_submit_returns_the_job_id(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho "4242;cluster"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    summary = slurm.launch(config(tmp_path, "launcher.submit=true"), 2, "train_ar", tmp_path / "s")
    assert summary["job_id"] == "4242"
    assert (fake.parent / "args").read_text().split() == ["--parsable", str(tmp_path / "s" / "slurm.sbatch")]
