"""One stage of a recipe: its context, its output folder, its completion marker, and running it.

A stage is done when `<exp_dir>/.done/stageNN_<name>.json` holds the fingerprint of what it
depends on (its own entry, the config groups its module names in DEPENDS_ON, the seed): a
change of any of them runs it again. `runner.py` runs stages in order; `chain.py` submits
them as SLURM jobs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ttsframe.pipeline import stage_module
from ttsframe.training import slurm
from ttsframe.utils.atomic import write_json, write_text


@dataclass
class StageContext:
    """What a stage module's `run(cfg, ctx)` is given: which stage, and where it writes."""

    index: int
    name: str
    exp_dir: Path
    out_dir: Path
    force: bool = False
    options: dict = field(default_factory=dict)
    after: list[str] = field(default_factory=list)  # launcher=slurm: job ids the stage's job waits for


def fingerprint(cfg: DictConfig, groups: tuple[str, ...], stage: dict) -> str:
    """Hash of what a stage depends on: its own entry plus the named config groups."""
    parts = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in groups if g in cfg}
    parts["stage"] = stage
    parts["seed"] = cfg.seed
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def marker_path(exp_dir: Path, index: int, name: str) -> Path:
    return exp_dir / ".done" / f"stage{index:02d}_{name}.json"


def stage_dir(exp_dir: Path, stage: dict) -> Path:
    """The stage's output folder: its module's OUTPUT_DIR, or (None) one named after the stage."""
    return Path(exp_dir) / (stage_module(stage["kind"]).OUTPUT_DIR or stage["name"])


def done_summary(cfg: DictConfig, index: int, stage: dict, exp_dir: Path) -> dict | None:
    """The marker of a stage done with this config (same fingerprint), else None."""
    marker = marker_path(exp_dir, index, stage["name"])
    if not marker.is_file():
        return None
    done = json.loads(marker.read_text())
    return done if done.get("fingerprint") == fingerprint(cfg, stage_module(stage["kind"]).DEPENDS_ON, stage) else None


def run_stage(cfg: DictConfig, index: int, stage: dict, exp_dir: Path, force: bool,
              after: list[str] | tuple[str, ...] = ()) -> dict:
    """Runs one stage here, or with `launcher=slurm` submits it (after the jobs `after`): the
    stage's module submits its own jobs where it says `LAUNCHES_JOBS`, the others are one-task jobs."""
    module = stage_module(stage["kind"])
    name = stage["name"]
    ctx = StageContext(index, name, exp_dir, stage_dir(exp_dir, stage), force, stage.get("options", {}), list(after))
    stamp = fingerprint(cfg, module.DEPENDS_ON, stage)
    marker = marker_path(exp_dir, index, name)
    if marker.is_file() and not force:
        done = json.loads(marker.read_text())
        if done.get("fingerprint") == stamp:
            print(f"stage {index} {name}: already done ({ctx.out_dir}); skipping "
                  "(to redo it: force=1 with make, --force with python -m ttsframe run)")
            return {"stage": index, "name": name, "skipped": True, **done.get("summary", {})}
        print(f"stage {index} {name}: config changed since it ran; running again")
    marker.unlink(missing_ok=True)
    print(f"stage {index} {name}: start -> {ctx.out_dir}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    write_text(ctx.out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    began = time.time()
    if slurm.launcher_name(cfg) == "slurm" and not getattr(module, "LAUNCHES_JOBS", False):
        summary = slurm.launch(cfg, index, name, ctx.out_dir, ctx.after, slurm.one_task(cfg))
    else:
        summary = module.run(cfg, ctx) or {}
    seconds = round(time.time() - began, 2)
    if summary.get("pending"):  # submitted as a job (or one task of one), which marks the stage done when it finishes
        print(f"stage {index} {name}: {summary.get('note', 'launched')}")
        return {"stage": index, "name": name, **summary}
    write_json(marker, {"fingerprint": stamp, "seconds": seconds, "summary": summary})
    print(f"stage {index} {name}: done in {seconds:.1f} s")
    return {"stage": index, "name": name, "seconds": seconds, **summary}
