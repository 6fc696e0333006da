"""Runs a recipe's stages N..M: idempotent, with completion markers on disk (icefall-style).

With `launcher=slurm` each stage is submitted as a SLURM job instead, after the jobs of the
stages it reads (`ttsframe.pipeline.chain`); a job marks its stage done when it finishes.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ttsframe.errors import UserError
from ttsframe.pipeline.chain import submit_chain
from ttsframe.pipeline.stage import StageContext, fingerprint, marker_path, run_stage
from ttsframe.training import slurm

__all__ = ["StageContext", "describe_stages", "fingerprint", "marker_path", "run_recipe", "run_stage"]


def run_recipe(cfg: DictConfig, start: int = 0, stop: int | None = None, force: bool = False) -> list[dict]:
    """Runs stages start..stop (inclusive), or submits them (`launcher=slurm`); returns one summary
    per stage run, submitted or skipped."""
    stages = OmegaConf.to_container(cfg.stages, resolve=True)
    last = len(stages) - 1
    stop = last if stop is None else min(stop, last)
    if not 0 <= start <= last:
        raise UserError(f"--stage {start}: recipe {cfg.recipe} has stages 0..{last} ({describe_stages(stages)})")
    if slurm.launcher_name(cfg) == "slurm":
        return submit_chain(cfg, stages, start, stop, force)
    exp_dir = Path(cfg.exp_dir)
    return [run_stage(cfg, index, stages[index], exp_dir, force) for index in range(start, stop + 1)]


def describe_stages(stages: list[dict]) -> str:
    return ", ".join(f"{i} {s['name']}" for i, s in enumerate(stages))
