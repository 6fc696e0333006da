"""`launcher=slurm` on a real SLURM cluster (two nodes on this machine, see tests/slurm_cluster.py):
the valle recipe's train stage as a two-node job, and a job requeued from outside (`scontrol
requeue`) or preempted by SIGUSR1 that resumes exactly."""

import json
import re
import shutil
import time

import pytest
import torch
from slurm_cluster import ENDED

from ttsframe.__main__ import main
from ttsframe.pipeline.runner import marker_path

pytestmark = [pytest.mark.integration, pytest.mark.slurm]
AR, NAR = 2, 3  # stage numbers in recipes/valle/recipe.yaml
TINY = ["data=builtin_tiny", "codec.n_codebooks=2", "codec.codebook_size=32", "trainer.limit_val_batches=1",
        "trainer.logger=csv", "trainer.num_workers=0", "trainer.audio_samples=0", "trainer.progress_bar=false",
        "trainer.num_sanity_val_steps=0"]
SLURM = ["launcher=slurm", "launcher.cpus_per_task=1", "launcher.time=10"]


@pytest.fixture(scope="module")
def prepared(slurm_cluster, tmp_path_factory):
    """The valle recipe's stages 0-1 (prepare, tokenize) run here, on builtin_tiny: (exp dir, cache dir)."""
    root = tmp_path_factory.mktemp("valle")
    exp, cache = root / "exp", root / "cache"
    assert main(["run", "valle", "--stage", "0", "--stop-stage", "1", f"exp_dir={exp}", f"data.cache_dir={cache}",
                 *TINY]) == 0
    return exp, cache


def new_exp(prepared, path):
    """A fresh exp dir holding the prepared shards; returns it and the overrides that use it."""
    exp, cache = prepared
    shutil.copytree(exp / "shards", path / "shards")
    return path, [f"exp_dir={path}", f"data.cache_dir={cache}", *TINY]


def submitted_job(out: str) -> str:
    found = re.search(r"slurm: submitted .* as job (\d+)", out)
    assert found, out
    return found.group(1)


def job_log(stage_dir, job_id) -> str:
    """The job's stdout and stderr (every run of it: the launcher opens them in append mode)."""
    return "\n".join((stage_dir / f"slurm-{job_id}.{ext}").read_text(errors="replace")
                     for ext in ("out", "err") if (stage_dir / f"slurm-{job_id}.{ext}").is_file())


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


# The NAR stage with dropout: its random plans and dropout masks must replay exactly after a resume.
NAR_STAGE = ["run", "valle", "--stage", str(NAR), "--stop-stage", str(NAR)]
NAR_STEPS = ["trainer.max_steps=24", "trainer.checkpoint_every_n_steps=3", "trainer.val_check_interval=12",
             "model.dropout=0.1"]


@pytest.fixture(scope="module")
def straight_nar(prepared, tmp_path_factory):
    """The weights of the NAR stage trained here, in this process, uninterrupted, on as many torch
    threads as the jobs get from `launcher.cpus_per_task=1` (a sum over 2 threads may differ in the
    last bit; this process's own count depends on the machine and on the tests before)."""
    exp, overrides = new_exp(prepared, tmp_path_factory.mktemp("straight"))
    assert main([*NAR_STAGE, *overrides, *NAR_STEPS, "trainer.threads=1"]) == 0
    return weights(exp / "train_nar/checkpoints/last.ckpt")


def submit_nar_and_wait_for_a_checkpoint(cluster, exp, overrides, capsys) -> str:
    """Submits the NAR stage as a job; returns its id once its first checkpoint (step 3 of 24) is written."""
    capsys.readouterr()
    assert main([*NAR_STAGE, *overrides, *NAR_STEPS, *SLURM]) == 0
    job_id = submitted_job(capsys.readouterr().out)
    stage_dir = exp / "train_nar"
    deadline = time.time() + 120
    while not (stage_dir / "checkpoints" / "last.ckpt").is_file():
        job = cluster.job(job_id)
        assert job["JobState"] not in ENDED, f"job {job_id} ended before its first checkpoint:\n" + job_log(
            stage_dir, job_id)[-3000:]
        assert time.time() < deadline, f"no checkpoint after 120 s: {job['JobState']} ({job['Reason']})"
        time.sleep(0.1)
    return job_id


def assert_resumed_once_to_the_same_weights(cluster, exp, job_id, straight) -> int:
    """The job ended after one requeue, resumed from last.ckpt, reached step 24 with the weights of
    the uninterrupted run; returns the step it resumed from."""
    job = cluster.wait(job_id, timeout=180, until=lambda j: j["JobState"] in ENDED and j["Restarts"] != "0")
    stage_dir = exp / "train_nar"
    log = job_log(stage_dir, job_id)
    assert (job["JobState"], job["ExitCode"], job["Restarts"]) == ("COMPLETED", "0:0", "1"), log[-3000:]
    # The second run (restart 1) resumed from the checkpoint the first one left mid-training.
    assert f"job {job_id} on n1, restart 1" in log or f"job {job_id} on n2, restart 1" in log, log[-3000:]
    assert re.search(rf"slurm: task 0 of 1 on n\d \(node 0\), job {job_id}, restart 1", log), log[-3000:]
    resumed = re.findall(r"train: resuming from (\S+) \(step (\d+)\)", log)
    assert len(resumed) == 1, log[-3000:]
    path, step = resumed[0]
    assert path == str(stage_dir / "checkpoints" / "last.ckpt") and 0 < int(step) < 24
    assert f"skipping the {step} training batches already trained on" in log
    # Both runs of the job took their thread count from the job's CPUs, as the straight run was told to.
    assert log.count("train: torch threads 1 intra-op (SLURM_CPUS_PER_TASK)") == 2, log[-3000:]
    # ... and ended where the uninterrupted run did, bit for bit.
    assert json.loads(marker_path(exp, NAR, "train_nar").read_text())["summary"]["global_step"] == 24
    resumed_weights = weights(stage_dir / "checkpoints/last.ckpt")
    assert straight.keys() == resumed_weights.keys()
    different = [k for k in straight if not torch.equal(straight[k], resumed_weights[k])]
    assert not different, different
    return int(step)


def test_train_stage_runs_as_a_two_node_job(slurm_cluster, prepared, tmp_path, capsys):
    exp, overrides = new_exp(prepared, tmp_path / "exp")
    command = ["run", "valle", "--stage", str(AR), "--stop-stage", str(AR), *overrides, "trainer.max_steps=4",
               "trainer.val_check_interval=2", "trainer.checkpoint_every_n_steps=2", *SLURM, "trainer.num_nodes=2",
               "trainer.devices=1"]
    assert main(command) == 0
    job_id = submitted_job(capsys.readouterr().out)
    job = slurm_cluster.wait(job_id, timeout=150)
    stage_dir = exp / "train_ar"
    log = job_log(stage_dir, job_id)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    assert (job["NumNodes"], job["NumTasks"], job["NodeList"]) == ("2", "2", "n[1-2]")

    # Each rank says where it runs (ttsframe.training.trainer.build_plugins); Lightning sees 2 processes.
    tasks = re.findall(r"slurm: task (\d+) of (\d+) on (\S+) \(node (\d+)\), job (\d+), restart (\d+)", log)
    assert sorted(tasks) == [("0", "2", "n1", "0", job_id, "0"), ("1", "2", "n2", "1", job_id, "0")], log[-3000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-3000:]
    assert "Starting with 2 processes" in log
    summary = json.loads((stage_dir / "summary.json").read_text())
    assert (summary["world_size"], summary["global_step"]) == (2, 4)
    assert torch.load(stage_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4

    # The job marked the stage done: the same command now skips it instead of submitting it again.
    assert json.loads(marker_path(exp, AR, "train_ar").read_text())["summary"]["global_step"] == 4
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "stage 2 train_ar: already done" in out and "submitted" not in out


def test_requeued_job_resumes_to_the_weights_of_an_uninterrupted_run(slurm_cluster, prepared, straight_nar, tmp_path,
                                                                     capsys):
    exp, overrides = new_exp(prepared, tmp_path / "requeued")
    job_id = submit_nar_and_wait_for_a_checkpoint(slurm_cluster, exp, overrides, capsys)
    slurm_cluster.command("scontrol", "requeue", job_id)  # SLURM ends it at once: back to the last periodic save
    step = assert_resumed_once_to_the_same_weights(slurm_cluster, exp, job_id, straight_nar)
    assert step % 3 == 0


def test_sigusr1_saves_at_a_step_boundary_requeues_and_resumes_exactly(slurm_cluster, prepared, straight_nar,
                                                                        tmp_path, capsys):
    """What SLURM sends `launcher.signal_seconds` before the time limit, sent here at once (`scancel
    --signal=USR1` reaches the job's tasks, as `--signal=SIGUSR1@N` does): the job checkpoints at the
    next step boundary, wherever in a step the signal came, requeues itself and resumes exactly."""
    exp, overrides = new_exp(prepared, tmp_path / "signalled")
    job_id = submit_nar_and_wait_for_a_checkpoint(slurm_cluster, exp, overrides, capsys)
    stage_dir = exp / "train_nar"
    assert "#SBATCH --signal=SIGUSR1@90" in (stage_dir / "slurm.sbatch").read_text()
    slurm_cluster.command("scancel", "--signal=USR1", job_id)
    step = assert_resumed_once_to_the_same_weights(slurm_cluster, exp, job_id, straight_nar)
    log = job_log(stage_dir, job_id)
    assert f"preempted: SIGUSR1; saved last.ckpt at step {step}; requeued job {job_id}" in log, log[-3000:]
    assert not list(stage_dir.glob("hpc_ckpt_*.ckpt"))  # Lightning's own signal-time save is off
