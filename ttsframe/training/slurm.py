"""`launcher=slurm`: recipe stages as SLURM batch jobs (the chain of them: `ttsframe.pipeline.chain`).

A stage's job script (`<stage dir>/slurm.sbatch`) runs the same command line limited to that
stage, with `launcher=local`, under `srun`. A train stage asks for one task per device on
`trainer.num_nodes` nodes (Lightning's SLURM environment reads the ranks from SLURM); the other
stages ask for one task. What a job waits for is given to sbatch (`--dependency=afterok:<ids>
--kill-on-invalid-dep=yes`), not written in the script, so a script can be submitted again.

Preemption: with `launcher.requeue` the jobs have `--requeue`, and SLURM sends a train job's
tasks SIGUSR1 `signal_seconds` before the time limit; the job then saves `last.ckpt` at the next
step boundary and requeues itself (`ttsframe.training.preemption`), and the requeued job resumes
from it.

A stage split over a job array (`launch_array`, the tokenize stage's `launcher.array=N`) is three
jobs: a plan job, the array (task k runs with `launcher.array_task=k`), and a final job that runs
the stage as one task would and marks it done.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttsframe.config.loading import RECIPE_DIR
from ttsframe.errors import UserError

PLAN = "plan"  # `launcher.array_task` of an array's plan job
# Job states (scontrol's JobState) of a job that has not ended yet; COMPLETED ended well, the rest failed.
ACTIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
                 "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "SPECIAL_EXIT", "RESV_DEL_HOLD")


@dataclass(frozen=True)
class JobShape:
    """What a job asks for."""

    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    signal: bool = False  # SIGUSR1 `signal_seconds` before the time limit (train stages act on it)
    array: int = 0  # tasks of a job array (0: a plain job)


def launcher_name(cfg: Any) -> str:
    return cfg.launcher.name if "launcher" in cfg else "local"


def train_shape(lcfg: Any, tcfg: Any) -> JobShape:
    """A train stage's job: `trainer.devices` tasks (and GPUs, unless on CPU) on each of `trainer.num_nodes`."""
    devices = tcfg.devices
    if not isinstance(devices, int) or devices < 1:
        raise UserError(f"launcher=slurm needs trainer.devices as a number of processes per node, got {devices!r}")
    gpus = lcfg.gpus_per_node if lcfg.gpus_per_node is not None else (0 if tcfg.accelerator == "cpu" else devices)
    return JobShape(int(tcfg.num_nodes), devices, int(gpus), signal=True)


def one_task(cfg: Any, array: int = 0) -> JobShape:
    """Any other stage's job (or each task of its array): one task, with one GPU where the train stages use GPUs."""
    tcfg, lcfg = cfg.get("trainer"), cfg.launcher
    gpus = lcfg.gpus_per_node if lcfg.gpus_per_node is not None else (
        0 if tcfg is None or tcfg.accelerator == "cpu" else 1)
    return JobShape(gpus_per_node=min(int(gpus), 1), array=array)


def recipe_arg(cfg: Any) -> str:
    """The recipe as the command line names it: its name, or its file when outside recipes/."""
    if cfg.get("recipe_file") and Path(cfg.recipe_file) != (RECIPE_DIR / cfg.recipe / "recipe.yaml").resolve():
        return cfg.recipe_file
    return cfg.recipe


def stage_args(cfg: Any, index: int, launcher: str = "local") -> list[str]:
    """`run <recipe> <the run's overrides> launcher=<launcher> --stage N --stop-stage N`: the
    arguments of `python -m ttsframe` that run stage N alone, as this run would.

    Not `--force`: a requeued job (or a DDP worker) must resume, not start over.
    """
    kept = [o for o in (cfg.get("overrides") or []) if o.partition("=")[0].split(".")[0] != "launcher"]
    return ["run", recipe_arg(cfg), *kept, f"launcher={launcher}", "--stage", str(index), "--stop-stage", str(index)]


def sbatch_script(lcfg: Any, tcfg: Any, job_name: str, stage_dir: Path, command: list[str], workdir: Path,
                  shape: JobShape | None = None, log: str = "slurm-%j", tail: str = "",
                  script_name: str = "slurm.sbatch") -> str:
    """The text of the batch script.

    Args:
        lcfg: `LauncherConfig`; tcfg: `TrainerConfig` (nodes, devices, accelerator), read when no `shape` is given.
        job_name: SLURM job name.
        stage_dir: where the job's logs go (`<log>.out/.err`).
        command: what each task runs (`python -m ttsframe` + `stage_args`).
        workdir: the job's working directory (relative paths of the run resolve from it).
        shape: what the job asks for; None: a train stage's (`train_shape`).
        log: the logs' name pattern (`slurm-%j`; an array's `slurm-%A_%a`).
        tail: shell words appended to the command unquoted (e.g. `launcher.array_task=$SLURM_ARRAY_TASK_ID`).
        script_name: the script's file name in `stage_dir` (for its header comment).
    """
    shape = shape or train_shape(lcfg, tcfg)
    options = [
        f"--job-name={job_name}",
        f"--nodes={shape.nodes}",
        f"--ntasks-per-node={shape.tasks_per_node}",
        f"--cpus-per-task={lcfg.cpus_per_task}",
        f"--time={lcfg.time}",
        f"--chdir={workdir}",
        f"--output={stage_dir}/{log}.out",
        f"--error={stage_dir}/{log}.err",
        "--open-mode=append",  # a requeued job keeps writing the same logs
    ]
    options += [f"--array=0-{shape.array - 1}"] if shape.array else []
    options += [f"--gpus-per-node={shape.gpus_per_node}"] if shape.gpus_per_node else []
    options += [f"--{key}={getattr(lcfg, key)}" for key in ("partition", "account", "qos", "mem")
                if getattr(lcfg, key) is not None]
    if lcfg.requeue:
        options += [f"--signal=SIGUSR1@{lcfg.signal_seconds}"] if shape.signal else []
        options.append("--requeue")
    options += ["--" + str(o).removeprefix("--") for o in lcfg.extra_sbatch]
    lines = ["#!/bin/bash", f"# Written by ttsframe for job `{job_name}`: sbatch {stage_dir}/{script_name}"]
    lines += [f"#SBATCH {o}" for o in options]
    lines += ["", "set -eo pipefail", "export PYTHONUNBUFFERED=1", *lcfg.setup,
              'echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}"',
              "srun " + shlex.join(command) + (f" {tail}" if tail else ""), ""]
    return "\n".join(lines)


def dependency_options(after: list[str] | tuple[str, ...]) -> list[str]:
    """sbatch options that start a job once the jobs `after` have all completed, and cancel it if one fails."""
    return [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"] if after else []


def submit(script: Path, after: list[str] | tuple[str, ...] = ()) -> str:
    """Submits `script` with sbatch (after the jobs `after`); returns the job id."""
    if shutil.which("sbatch") is None:
        raise UserError(f"launcher=slurm: `sbatch` is not on PATH (not a SLURM login node?). The job script is "
                        f"written: {script}; submit it where SLURM is, or set launcher.submit=false to only write it")
    done = subprocess.run(["sbatch", "--parsable", *dependency_options(after), str(script)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise UserError(f"sbatch {script} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]


def write_and_submit(cfg: Any, script: Path, job_name: str, command: list[str], shape: JobShape,
                     after: list[str] | tuple[str, ...] = (), log: str = "slurm-%j", tail: str = "") -> dict:
    """Writes `script` and submits it unless `launcher.submit` is false: {job_id (None when not
    submitted), script, log (the job's stdout; an array's with `%a` for the task)}."""
    stage_dir = script.parent.resolve()
    stage_dir.mkdir(parents=True, exist_ok=True)
    script.write_text(sbatch_script(cfg.launcher, cfg.get("trainer"), job_name, stage_dir, command, Path(os.getcwd()),
                                    shape, log, tail, script.name))
    if not cfg.launcher.submit:
        print(f"slurm: wrote {script} (launcher.submit=false: not submitted)")
        return {"job_id": None, "script": str(script), "log": None}
    job = submit(script, after)
    out = stage_dir / (log.replace("%A", job).replace("%j", job) + ".out")
    waits = f" after job(s) {', '.join(after)}" if after else ""
    print(f"slurm: submitted {script} as job {job}{waits}; logs: {out}")
    return {"job_id": job, "script": str(script), "log": str(out)}


def launch(cfg: Any, index: int, name: str, stage_dir: Path, after: list[str] | tuple[str, ...] = (),
           shape: JobShape | None = None) -> dict:
    """Writes `<stage_dir>/slurm.sbatch` for stage `index` and submits it unless `launcher.submit` is false.

    Args:
        after: job ids the job waits for (`afterok`).
        shape: what it asks for; None: a train stage's (`train_shape`).

    Returns a stage summary with `pending: True` (the runner leaves the stage unmarked: the job
    marks it done when it finishes), `job_id`, `script`, `log` and `jobs` (this one job).
    """
    job_name = cfg.launcher.job_name or f"{cfg.recipe}-{name}"
    command = [sys.executable, "-m", "ttsframe", *stage_args(cfg, index)]
    shape = shape or train_shape(cfg.launcher, cfg.trainer)
    job = write_and_submit(cfg, Path(stage_dir) / "slurm.sbatch", job_name, command, shape, after)
    return {"pending": True, **job, "jobs": [{"role": "stage", **job}]}


def launch_array(cfg: Any, index: int, name: str, stage_dir: Path, tasks: int,
                 after: list[str] | tuple[str, ...] = ()) -> dict:
    """Stage `index` as three jobs: a plan job (`launcher.array_task=plan`, after `after`), an array of
    `tasks` one-task jobs (task k: `launcher.array_task=k`) and a final job (the stage as one job
    runs it, which marks it done); each waits for the one before. Scripts: `<stage_dir>/slurm-plan.sbatch`,
    `slurm-array.sbatch`, `slurm.sbatch`. Returns a stage summary as `launch` does (`job_id`: the
    final job's, what later stages wait for; `jobs`: all three)."""
    stage_dir = Path(stage_dir)
    job_name = cfg.launcher.job_name or f"{cfg.recipe}-{name}"
    command = [sys.executable, "-m", "ttsframe", *stage_args(cfg, index), f"launcher.array={tasks}"]
    plan = write_and_submit(cfg, stage_dir / "slurm-plan.sbatch", f"{job_name}-plan", command, one_task(cfg), after,
                            tail=f"launcher.array_task={PLAN}")
    array = write_and_submit(cfg, stage_dir / "slurm-array.sbatch", f"{job_name}-array", command,
                             one_task(cfg, array=tasks), [plan["job_id"]] if plan["job_id"] else [],
                             log="slurm-%A_%a", tail="launcher.array_task=${SLURM_ARRAY_TASK_ID}")
    final = write_and_submit(cfg, stage_dir / "slurm.sbatch", job_name, command[:-1], one_task(cfg),
                             [array["job_id"]] if array["job_id"] else [])
    roles = [{"role": "plan", **plan}, {"role": "array", **array}, {"role": "final", **final}]
    return {"pending": True, **final, "jobs": roles}


def array_task(cfg: Any) -> tuple[int, int] | str | None:
    """In a job of `launch_array`: PLAN in its plan job, (k, N) in task k of its N; else None."""
    lcfg = cfg.get("launcher")
    if lcfg is None or lcfg.get("array_task") is None:
        return None
    if lcfg.array_task == PLAN:
        return PLAN
    tasks = int(lcfg.array)
    try:
        task = int(lcfg.array_task)
    except ValueError:
        task = -1
    if not 0 <= task < tasks:
        raise UserError(f"launcher.array_task={lcfg.array_task!r}: {PLAN!r} or a task number below "
                        f"launcher.array={tasks}")
    return task, tasks


def job_records(job_id: str) -> list[dict[str, str]]:
    """What SLURM knows of a job: `scontrol show job` fields (one dict per array task; JobState,
    Reason, ExitCode, StdOut, ...), else sacct's JobState and ExitCode (once the controller has
    forgotten the job); [] where neither knows it or there is no SLURM here."""
    try:
        shown = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True,
                               timeout=30)
        if shown.returncode == 0 and shown.stdout.strip():
            return [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in shown.stdout.splitlines()
                    if line.strip()]
        acct = subprocess.run(["sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "JobID,State,ExitCode"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    if acct.returncode != 0:
        return []
    rows = [line.split("|") for line in acct.stdout.splitlines() if line.count("|") == 2]
    return [{"JobId": job, "JobState": state.split()[0], "ExitCode": code} for job, state, code in rows if state]
