"""Codecs: one explicit registry, imported lazily (encodec and dac take seconds to import).

Each codec module defines `Config` (a dataclass whose first field is `name`, plus `device` and
`batch_seconds`) and a codec class built as `Class(config, **extra)`. `configs/codec/*.yaml` are
validated against `codec_schema(name)`; `build_codec` turns a config into a `Codec`.
Codecs with `needs_fit = True` follow `FittableCodec` (fit / save / load; see base.py).
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any, Mapping

from ttsframe.codecs.base import Codec, FittableCodec
from ttsframe.errors import ConfigError

# name -> "module:Class"; the module also defines `Config`.
CODECS: dict[str, str] = {
    "encodec": "ttsframe.codecs.encodec:EncodecCodec",
    "dac": "ttsframe.codecs.dac:DACCodec",
    "mel": "ttsframe.codecs.mel_codec:MelCodec",
    "spectral": "ttsframe.codecs.spectral:SpectralCodec",
    "semantic": "ttsframe.codecs.semantic:SemanticCodec",
}


def _entry(name: str) -> tuple[Any, str]:
    if name not in CODECS:
        raise ConfigError(f"unknown codec `{name}`; valid codecs: {', '.join(sorted(CODECS))}")
    module, _, cls = CODECS[name].partition(":")
    return importlib.import_module(module), cls


def codec_schema(name: str) -> type:
    """The Config dataclass that validates `configs/codec/*.yaml` with `name: <name>`."""
    return _entry(name)[0].Config


def to_dataclass(schema: type, value: Any, where: str = "codec") -> Any:
    """A `schema` instance from a dataclass, dict or DictConfig (any Mapping), recursively.

    Unknown keys fail with the valid ones; missing keys take the schema's defaults.
    """
    if isinstance(value, schema):
        return value
    if dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(schema)
    names = [f.name for f in dataclasses.fields(schema)]
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(sorted(names))}")
    kwargs = {}
    for key in value:
        item = value[key]
        if dataclasses.is_dataclass(hints[key]):
            item = to_dataclass(hints[key], item, f"{where}.{key}")
        elif isinstance(item, Mapping):
            item = dict(item)
        elif isinstance(item, typing.Sequence) and not isinstance(item, (str, bytes)):
            item = list(item)
        kwargs[key] = item
    return schema(**kwargs)


def build_codec(cfg: Any, **extra) -> Codec:
    """A codec from its config (dataclass, dict or DictConfig with `name`).

    `extra` goes to the codec class, e.g. `vocoder=` for the mel and spectral codecs.
    """
    name = cfg.get("name") if isinstance(cfg, Mapping) else getattr(cfg, "name", None)
    if not isinstance(name, str):
        raise ConfigError(f"codec config needs `name:`, one of {', '.join(sorted(CODECS))}")
    module, cls = _entry(name)
    return getattr(module, cls)(to_dataclass(module.Config, cfg, "codec"), **extra)


__all__ = ["CODECS", "Codec", "FittableCodec", "build_codec", "codec_schema", "to_dataclass"]
