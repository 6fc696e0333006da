"""Corpus parsers: one module per corpus, each turning a corpus on disk into `Candidate`s.

Each module defines a `Config` dataclass (extending `data_prep.common.CorpusConfig`) and
`find(cfg) -> list[Candidate]`. Selected with `data=<name>` and configured under `data.`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Corpus name (the `corpus:` key of configs/data/*.yaml) -> module.
CORPORA: dict[str, str] = {
    "builtin": "data_prep.builtin",
    "ljspeech": "data_prep.ljspeech",
    "libritts": "data_prep.libritts",
    "vctk": "data_prep.vctk",
    "generic": "data_prep.generic",
}


def corpus_module(name: str) -> ModuleType:
    if name not in CORPORA:
        from ttsframe.errors import ConfigError

        raise ConfigError(f"unknown corpus `{name}`; corpora: {', '.join(CORPORA)}")
    return importlib.import_module(CORPORA[name])


def corpus_schema(name: str) -> type:
    return corpus_module(name).Config
