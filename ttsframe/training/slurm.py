"""`launcher=slurm`: one train stage as a SLURM batch job, requeued automatically on preemption.

The job script (`<stage dir>/slurm.sbatch`) runs the same command line limited to this stage,
with `launcher=local`, under `srun`: one task per device, so Lightning's SLURM environment reads
the ranks from SLURM. SLURM sends SIGUSR1 `signal_seconds` before the time limit; Lightning then
saves `hpc_ckpt_<n>.ckpt` in the stage folder and requeues the job, and the requeued job resumes
from the newest checkpoint.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ttsframe.config.loading import RECIPE_DIR
from ttsframe.errors import UserError


def stage_args(cfg: Any, index: int, launcher: str = "local") -> list[str]:
    """`run <recipe> <the run's overrides> launcher=<launcher> --stage N --stop-stage N`: the
    arguments of `python -m ttsframe` that run stage N alone, as this run would.

    Not `--force`: a requeued job (or a DDP worker) must resume, not start over.
    """
    recipe = cfg.recipe
    if cfg.get("recipe_file") and Path(cfg.recipe_file) != (RECIPE_DIR / recipe / "recipe.yaml").resolve():
        recipe = cfg.recipe_file  # a recipe file outside recipes/
    kept = [o for o in (cfg.get("overrides") or []) if o.partition("=")[0].split(".")[0] != "launcher"]
    return ["run", recipe, *kept, f"launcher={launcher}", "--stage", str(index), "--stop-stage", str(index)]


def sbatch_script(lcfg: Any, tcfg: Any, job_name: str, stage_dir: Path, command: list[str], workdir: Path) -> str:
    """The text of the batch script.

    Args:
        lcfg: `LauncherConfig`; tcfg: `TrainerConfig` (nodes, devices, accelerator).
        job_name: SLURM job name.
        stage_dir: where the job's logs go (`slurm-<job id>.out/.err`).
        command: what each task runs (`python -m ttsframe` + `stage_args`).
        workdir: the job's working directory (relative paths of the run resolve from it).
    """
    devices = tcfg.devices
    if not isinstance(devices, int) or devices < 1:
        raise UserError(f"launcher=slurm needs trainer.devices as a number of processes per node, got {devices!r}")
    gpus = lcfg.gpus_per_node if lcfg.gpus_per_node is not None else (0 if tcfg.accelerator == "cpu" else devices)
    options = [
        f"--job-name={job_name}",
        f"--nodes={tcfg.num_nodes}",
        f"--ntasks-per-node={devices}",
        f"--cpus-per-task={lcfg.cpus_per_task}",
        f"--time={lcfg.time}",
        f"--chdir={workdir}",
        f"--output={stage_dir}/slurm-%j.out",
        f"--error={stage_dir}/slurm-%j.err",
        "--open-mode=append",  # a requeued job keeps writing the same logs
    ]
    options += [f"--gpus-per-node={gpus}"] if gpus else []
    options += [f"--{key}={getattr(lcfg, key)}" for key in ("partition", "account", "qos", "mem")
                if getattr(lcfg, key) is not None]
    if lcfg.requeue:
        options += [f"--signal=SIGUSR1@{lcfg.signal_seconds}", "--requeue"]
    options += ["--" + str(o).removeprefix("--") for o in lcfg.extra_sbatch]
    lines = ["#!/bin/bash", f"# Written by ttsframe for job `{job_name}`: sbatch {stage_dir}/slurm.sbatch"]
    lines += [f"#SBATCH {o}" for o in options]
    lines += ["", "set -eo pipefail", "export PYTHONUNBUFFERED=1", *lcfg.setup,
              'echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}"',
              "srun " + shlex.join(command), ""]
    return "\n".join(lines)


def submit(script: Path) -> str:
    """Submits `script` with sbatch; returns the job id."""
    if shutil.which("sbatch") is None:
        raise UserError(f"launcher=slurm: `sbatch` is not on PATH (not a SLURM login node?). The job script is "
                        f"written: {script}; submit it where SLURM is, or set launcher.submit=false to only write it")
    done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"sbatch {script} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]


def launch(cfg: Any, index: int, name: str, stage_dir: Path) -> dict:
    """Writes `<stage_dir>/slurm.sbatch` and submits it unless `launcher.submit` is false.

    Returns a stage summary with `pending: True`: the runner leaves the stage unmarked (the job
    marks it done when it finishes).
    """
    job_name = cfg.launcher.job_name or f"{cfg.recipe}-{name}"
    command = [sys.executable, "-m", "ttsframe", *stage_args(cfg, index)]
    script = stage_dir / "slurm.sbatch"
    stage_dir.mkdir(parents=True, exist_ok=True)
    script.write_text(sbatch_script(cfg.launcher, cfg.trainer, job_name, stage_dir.resolve(), command,
                                    Path(os.getcwd())))
    job = None
    if cfg.launcher.submit:
        job = submit(script)
        print(f"slurm: submitted {script} as job {job}; logs: {stage_dir}/slurm-{job}.out")
    else:
        print(f"slurm: wrote {script} (launcher.submit=false: not submitted)")
    return {"pending": True, "job_id": job, "script": str(script)}  # the job marks the stage done
