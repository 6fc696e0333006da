"""Recipe stages: one module per stage kind, run in order by `ttsframe.pipeline.runner`.

A stage module defines `OUTPUT_DIR` (its folder under exp_dir; None: the stage's name),
`DEPENDS_ON` (the config groups whose change makes a finished stage stale) and
`run(cfg, ctx) -> dict` (a summary; `pending: True` in it means the work was submitted as a job,
which marks the stage done itself). For `launcher=slurm` (`ttsframe.pipeline.chain`) it may say
which folders of other stages it reads, `READS` or `reads(cfg, ctx)` (its job waits for theirs),
and `LAUNCHES_JOBS = True` where `run` submits its own job(s) (train: multi-task; tokenize: an
array); the runner submits the others as one-task jobs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ttsframe.errors import ConfigError

# Stage kind (the `kind:` of a recipe stage) -> module.
STAGE_KINDS: dict[str, str] = {
    "prepare": "ttsframe.pipeline.prepare",
    "train_tokenizer": "ttsframe.pipeline.train_tokenizer",
    "tokenize": "ttsframe.pipeline.tokenize",
    "train": "ttsframe.pipeline.train",
    "train_vocoder": "ttsframe.pipeline.train_vocoder",
    "synthesize": "ttsframe.pipeline.synthesize",
    "evaluate": "ttsframe.pipeline.evaluate",
    "release": "ttsframe.pipeline.release",
}


def stage_module(kind: str) -> ModuleType:
    if kind not in STAGE_KINDS:
        raise ConfigError(f"unknown stage kind `{kind}`; kinds: {', '.join(STAGE_KINDS)}")
    return importlib.import_module(STAGE_KINDS[kind])
