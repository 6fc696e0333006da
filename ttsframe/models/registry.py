"""`FAMILIES`: the one registry of model families, imported lazily.

Each entry names a family folder whose `__init__` defines `SPEC` (a `FamilySpec`); the train
stage finds its task there, the synthesize / release stages, `load_release` and the CLI its
synthesizer and sampling options. Adding a family is one folder and one line here.
"""

from __future__ import annotations

import importlib

from ttsframe.errors import UserError
from ttsframe.models.spec import FamilySpec

# family name -> the package whose `SPEC` describes it.
FAMILIES: dict[str, str] = {
    "valle": "ttsframe.models.valle",
    "melle": "ttsframe.models.melle",
    "cosyvoice": "ttsframe.models.cosyvoice",
    "ditar": "ttsframe.models.ditar",
}


def family(name: str) -> FamilySpec:
    """The spec of family `name`; UserError listing the known families otherwise."""
    if name not in FAMILIES:
        raise UserError(f"unknown model family {name!r}; families: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name]).SPEC


def all_tasks() -> dict[str, FamilySpec]:
    """Every train task name -> the spec of the family it trains, in `FAMILIES` order."""
    return {task: spec for spec in map(family, FAMILIES) for task in spec.tasks}
