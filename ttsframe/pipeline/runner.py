"""Runs a recipe's stages N..M: idempotent, with completion markers on disk (icefall-style)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ttsframe.errors import UserError
from ttsframe.pipeline import stage_module
from ttsframe.utils.atomic import write_json, write_text


@dataclass
class StageContext:
    index: int
    name: str
    exp_dir: Path
    out_dir: Path
    force: bool = False
    options: dict = field(default_factory=dict)


def fingerprint(cfg: DictConfig, groups: tuple[str, ...], stage: dict) -> str:
    """Hash of what a stage depends on: its own entry plus the named config groups."""
    parts = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in groups if g in cfg}
    parts["stage"] = stage
    parts["seed"] = cfg.seed
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def marker_path(exp_dir: Path, index: int, name: str) -> Path:
    return exp_dir / ".done" / f"stage{index:02d}_{name}.json"


def run_recipe(cfg: DictConfig, start: int = 0, stop: int | None = None, force: bool = False) -> list[dict]:
    """Runs stages start..stop (inclusive); returns one summary per stage run or skipped."""
    stages = OmegaConf.to_container(cfg.stages, resolve=True)
    last = len(stages) - 1
    stop = last if stop is None else min(stop, last)
    if not 0 <= start <= last:
        raise UserError(f"--stage {start}: recipe {cfg.recipe} has stages 0..{last} ({describe_stages(stages)})")
    exp_dir = Path(cfg.exp_dir)
    summaries = []
    for index in range(start, stop + 1):
        stage = stages[index]
        pending = [s["name"] for s in summaries if s.get("pending")]
        if pending and not getattr(stage_module(stage["kind"]), "LAUNCHES_JOBS", False):
            print(f"stage {index} {stage['name']}: waits for the job(s) of {', '.join(pending)}; "
                  f"run it with --stage {index} once they finish")
            break
        summaries.append(run_stage(cfg, index, stage, exp_dir, force))
    return summaries


def run_stage(cfg: DictConfig, index: int, stage: dict, exp_dir: Path, force: bool) -> dict:
    module = stage_module(stage["kind"])
    name = stage["name"]
    out_dir = exp_dir / (module.OUTPUT_DIR or name)  # OUTPUT_DIR None: one folder per stage, named after it
    ctx = StageContext(index, name, exp_dir, out_dir, force, stage.get("options", {}))
    stamp = fingerprint(cfg, module.DEPENDS_ON, stage)
    marker = marker_path(exp_dir, index, name)
    if marker.is_file() and not force:
        done = json.loads(marker.read_text())
        if done.get("fingerprint") == stamp:
            print(f"stage {index} {name}: already done ({ctx.out_dir}); skipping (add force=1 to redo)")
            return {"stage": index, "name": name, "skipped": True, **done.get("summary", {})}
        print(f"stage {index} {name}: config changed since it ran; running again")
    marker.unlink(missing_ok=True)
    print(f"stage {index} {name}: start -> {ctx.out_dir}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    write_text(ctx.out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    began = time.time()
    summary = module.run(cfg, ctx) or {}
    seconds = round(time.time() - began, 2)
    if summary.get("pending"):  # submitted as a job, which marks the stage done when it finishes
        print(f"stage {index} {name}: launched")
        return {"stage": index, "name": name, **summary}
    write_json(marker, {"fingerprint": stamp, "seconds": seconds, "summary": summary})
    print(f"stage {index} {name}: done in {seconds:.1f} s")
    return {"stage": index, "name": name, "seconds": seconds, **summary}


def describe_stages(stages: list[dict]) -> str:
    return ", ".join(f"{i} {s['name']}" for i, s in enumerate(stages))
