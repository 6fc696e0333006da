"""`FamilySpec`: what a model family folder exports, and all the rest of ttsframe reads of it.

Every `ttsframe/models/<family>/__init__.py` defines one `SPEC = FamilySpec(...)`. Its parts are
"module:Class" strings, imported only when asked for, so that reading a spec (listing the
families, checking a release's family) imports neither Lightning nor the models.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


def load_object(ref: str) -> Any:
    """"package.module:Name" -> that object (its module imported now)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class FamilySpec:
    """One model family.

    Attributes:
        name: the family (`model.family` of a run, `release.family` of a release, and
            `hyper_parameters.family` of its checkpoints).
        tasks: train stage `task:` option -> "module:Class" of the Lightning module that trains it.
        synthesizer: "module:Class" of its synthesizer (see `ttsframe.inference`).
        options: "module:Class" of its frozen sampling-options dataclass.
    """

    name: str
    tasks: dict[str, str]
    synthesizer: str
    options: str

    def task_class(self, task: str) -> type:
        """The Lightning module of train task `task` (one of `tasks`)."""
        return load_object(self.tasks[task])

    def synthesizer_class(self) -> type:
        return load_object(self.synthesizer)

    def options_class(self) -> type:
        return load_object(self.options)
