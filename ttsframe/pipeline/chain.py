"""`launcher=slurm` for a whole recipe: stages --stage..--stop-stage as a chain of SLURM jobs.

    make recipe=valle launcher=slurm launcher.partition=gpu trainer=gpu8   # submits, returns
    python -m ttsframe slurm-status valle                                   # where the jobs stand

Every stage not done yet becomes its own job (`ttsframe.training.slurm`), which waits
(`--dependency=afterok`) for the jobs of the earlier stages whose output it reads. A stage
module says what it reads with `READS` (folders under exp_dir, e.g. `("shards",)`) or
`reads(cfg, ctx)`; one that says neither waits for every earlier stage. In valle, train_ar and
train_nar both wait for tokenize only and so run side by side; synthesize waits for both. A job
that fails cancels the jobs waiting for it (`--kill-on-invalid-dep=yes`).

The chain is recorded in `<exp_dir>/slurm_chain.json`: per stage its job id, log, the stages
and job ids it waits for, and every job of the stage (a job array's stage has three). Running
the command again skips stages marked done, leaves a stage whose job is still pending or running
alone (later stages wait for that job), and submits the others again, saying how their last job
ended and where its log is.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ttsframe.pipeline import stage_module
from ttsframe.pipeline.stage import StageContext, done_summary, marker_path, run_stage, stage_dir
from ttsframe.training import slurm
from ttsframe.utils.atomic import write_json

CHAIN_FILE = "slurm_chain.json"
CANCELLED_BY_DEPENDENCY = "DependencyNeverSatisfied"  # scontrol's Reason of a job cancelled for a failed dependency


def chain_path(exp_dir: Path) -> Path:
    return Path(exp_dir) / CHAIN_FILE


def read_chain(exp_dir: Path) -> dict:
    path = chain_path(exp_dir)
    return json.loads(path.read_text()) if path.is_file() else {"stages": {}}


def output_name(stage: dict) -> str:
    """The folder (under exp_dir) a stage writes."""
    return stage_module(stage["kind"]).OUTPUT_DIR or stage["name"]


def stage_reads(cfg: DictConfig, stages: list[dict], index: int, exp_dir: Path) -> tuple[str, ...] | None:
    """The folders under exp_dir stage `index` reads (its module's `reads` or `READS`); None if it does not say."""
    stage = stages[index]
    module = stage_module(stage["kind"])
    if hasattr(module, "reads"):
        ctx = StageContext(index, stage["name"], exp_dir, stage_dir(exp_dir, stage), options=stage.get("options", {}))
        return tuple(module.reads(cfg, ctx))
    return getattr(module, "READS", None)


def needs(cfg: DictConfig, stages: list[dict], index: int, exp_dir: Path) -> list[str]:
    """Names of the earlier stages whose output stage `index` reads (the latest writer of each
    folder it reads), in recipe order; every earlier stage where its module does not say."""
    reads = stage_reads(cfg, stages, index, exp_dir)
    if reads is None:
        return [s["name"] for s in stages[:index]]
    writers = set()
    for folder in reads:
        earlier = [j for j in range(index) if output_name(stages[j]) == folder]
        writers.update(earlier[-1:])
    return [stages[j]["name"] for j in sorted(writers)]


def job_status(entry: dict) -> dict:
    """How the jobs of a chain entry stand: {state, job_id, log, reason, exit_code}.

    A job of the stage that ended badly (not cancelled for another stage's failure) comes first,
    with its own log (an array task's); then a job cancelled because a job it waited for failed
    (state CANCELLED, reason DependencyNeverSatisfied); then a job not ended yet; else COMPLETED,
    or UNKNOWN when SLURM has forgotten the jobs.
    """
    found = [(job, record) for job in entry.get("jobs") or [] if job.get("job_id")
             for record in slurm.job_records(job["job_id"])]

    def status(job: dict, record: dict) -> dict:
        task = record.get("ArrayTaskId")
        job_id = f"{record.get('ArrayJobId')}_{task}" if task and task.isdigit() else job["job_id"]
        log = record.get("StdOut") if task and task.isdigit() else job.get("log")
        return {"state": record["JobState"], "job_id": job_id, "log": log or job.get("log"),
                "reason": record.get("Reason"), "exit_code": record.get("ExitCode"), "role": job.get("role")}

    statuses = [status(job, record) for job, record in found]
    for group in ([s for s in statuses if failed(s)], [s for s in statuses if cancelled_by_dependency(s)],
                  [s for s in statuses if s["state"] in slurm.ACTIVE_STATES]):
        if group:
            return group[0]
    if found:  # every job SLURM still knows of completed
        return {**statuses[-1], "job_id": entry.get("job_id"), "log": entry.get("log")}
    return {"state": "UNKNOWN", "job_id": entry.get("job_id"), "log": entry.get("log"), "reason": None,
            "exit_code": None, "role": None}


def cancelled_by_dependency(status: dict) -> bool:
    return status["state"] == "CANCELLED" and status.get("reason") == CANCELLED_BY_DEPENDENCY


def failed(status: dict) -> bool:
    return status["state"] not in ("COMPLETED", "UNKNOWN", *slurm.ACTIVE_STATES) and not cancelled_by_dependency(status)


def describe(status: dict) -> str:
    """`job 7 FAILED (exit 1:0, NonZeroExitCode); log /exp/train_ar/slurm-7.out`; a job that never
    ran (cancelled for a failed dependency) without exit code and log."""
    never_ran = cancelled_by_dependency(status)
    details = [f"exit {status['exit_code']}" if failed(status) and status.get("exit_code") else None,
               status["reason"] if status.get("reason") not in (None, "None") else None]
    details = ", ".join(d for d in details if d)
    log = f"; log {status['log']}" if status.get("log") and not never_ran else ""
    return f"job {status['job_id']} {status['state']}" + (f" ({details})" if details else "") + log


def log_tail(log: str | None, lines: int = 3) -> list[str]:
    """The last lines of a job's stderr (`.err` beside its `.out` log), else of its log."""
    if not log:
        return []
    for path in (Path(log).with_suffix(".err"), Path(log)):
        if path.is_file():
            text = path.read_text(errors="replace").strip()
            if text:
                return text.splitlines()[-lines:]
    return []


def running_job(record: dict, name: str) -> dict | None:
    """The status of stage `name`'s job in the chain record while it is pending or running, else None."""
    entry = record["stages"].get(name)
    if not entry or not entry.get("job_id"):
        return None
    status = job_status(entry)
    return status if status["state"] in slurm.ACTIVE_STATES else None


def waited_jobs(cfg: DictConfig, stages: list[dict], names: list[str], jobs: dict, record: dict,
                exp_dir: Path) -> tuple[list[str], list[str]]:
    """(job ids to wait for, stages neither done nor submitted) of the stages `names`: their jobs
    submitted now, or still pending or running from an earlier chain."""
    after, missing = [], []
    by_name = {s["name"]: (i, s) for i, s in enumerate(stages)}
    for name in names:
        if name not in jobs and running_job(record, name):
            jobs[name] = record["stages"][name]["job_id"]
        if jobs.get(name):
            after.append(jobs[name])
        elif not done_summary(cfg, *by_name[name], exp_dir):
            missing.append(name)
    return after, missing


def submit_chain(cfg: DictConfig, stages: list[dict], start: int, stop: int, force: bool = False) -> list[dict]:
    """Submits stages start..stop as jobs, each after the jobs of the stages it reads (see the
    module docstring); returns one summary per stage (submitted, left running, or skipped)."""
    exp_dir = Path(cfg.exp_dir)
    record = read_chain(exp_dir)
    record.update(recipe=cfg.recipe, exp_dir=str(exp_dir))
    jobs: dict[str, str | None] = {}  # stage -> the job its dependants wait for
    summaries = []
    for index in range(start, stop + 1):
        stage = stages[index]
        name = stage["name"]
        done = None if force else done_summary(cfg, index, stage, exp_dir)
        if done:
            print(f"stage {index} {name}: already done ({stage_dir(exp_dir, stage)}); skipping "
                  "(to redo it: force=1 with make, --force with python -m ttsframe run)")
            summaries.append({"stage": index, "name": name, "skipped": True, **done.get("summary", {})})
            continue
        if running := running_job(record, name):  # never two jobs for one stage
            print(f"stage {index} {name}: {describe(running)}; not submitted again")
            jobs[name] = record["stages"][name]["job_id"]
            summaries.append({"stage": index, "name": name, "pending": True, **record["stages"][name]})
            continue
        if name in record["stages"] and record["stages"][name].get("job_id"):
            status = job_status(record["stages"][name])
            if failed(status) or cancelled_by_dependency(status):
                print(f"stage {index} {name}: its last {describe(status)}; submitting it again")
        wanted = needs(cfg, stages, index, exp_dir)
        after, missing = waited_jobs(cfg, stages, wanted, jobs, record, exp_dir)
        if missing:
            print(f"stage {index} {name}: reads what {', '.join(missing)} write(s), neither done nor submitted: "
                  f"its job may fail")
        summary = run_stage(cfg, index, stage, exp_dir, force, after)
        summaries.append(summary)
        if not summary.get("pending") or not summary.get("job_id"):  # ran here, or launcher.submit=false
            continue
        jobs[name] = summary["job_id"]
        record["stages"][name] = {
            "index": index, "kind": stage["kind"], "job_id": summary.get("job_id"), "log": summary.get("log"),
            "after": [n for n in wanted if jobs.get(n)], "after_jobs": after, "jobs": summary.get("jobs") or [],
            "submitted": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json(chain_path(exp_dir), record)
    submitted = [s for s in summaries if s.get("pending") and s.get("job_id")]
    if submitted:
        print(f"slurm: {len(submitted)} stage job(s) in the chain (record: {chain_path(exp_dir)}); "
              f"`python -m ttsframe slurm-status {slurm.recipe_arg(cfg)} exp_dir={exp_dir}` "
              f"says how they stand")
    return summaries


def report(cfg: DictConfig) -> int:
    """Prints how every stage of the recipe stands (done marker, its chain job's state and log);
    names the failed jobs and their logs. Returns 1 if a job of the chain failed, else 0."""
    exp_dir = Path(cfg.exp_dir)
    record = read_chain(exp_dir)
    stages = OmegaConf.to_container(cfg.stages, resolve=True)
    if not record["stages"]:
        print(f"slurm-status: no chain submitted for {exp_dir} (no {chain_path(exp_dir)})")
    broken, cancelled = [], []
    for index, stage in enumerate(stages):
        name = stage["name"]
        done = marker_path(exp_dir, index, name).is_file()
        entry = record["stages"].get(name)
        if not entry or not entry.get("job_id"):
            print(f"stage {index} {name}: " + ("done" if done else "not submitted"))
            continue
        status = job_status(entry)
        waits = f"; waits for {', '.join(entry['after'])}" if entry.get("after") else ""
        print(f"stage {index} {name}: {describe(status)}{waits}" + ("; done" if done else ""))
        if cancelled_by_dependency(status):
            cancelled.append(name)
        elif failed(status):
            broken.append((index, name, status))
    for index, name, status in broken:
        print(f"failed: stage {index} {name}, job {status['job_id']} ({status['state']}); its log: {status['log']}")
        for line in log_tail(status["log"]):
            print(f"    {line}")
    if cancelled:
        print(f"cancelled because a job they wait for failed: {', '.join(cancelled)}")
    if broken or cancelled:
        print("fix the cause and run the same `run ... launcher=slurm` command again: it submits the failed and "
              "cancelled stages again, after the jobs still running")
    return 1 if broken or cancelled else 0
