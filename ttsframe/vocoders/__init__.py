"""Vocoders: one explicit registry, imported lazily.

A trained vocoder slots in by adding `"hifigan": "ttsframe.vocoders.hifigan:HiFiGAN"`; its class
takes `(mel_config, **options)` like `GriffinLim`, e.g. `checkpoint=...`.
"""

from __future__ import annotations

import importlib

from ttsframe.errors import ConfigError
from ttsframe.vocoders.base import Vocoder

# name -> "module:Class"; the class is built as Class(mel_config, **options).
VOCODERS: dict[str, str] = {
    "griffin_lim": "ttsframe.vocoders.griffin_lim:GriffinLim",
}


def vocoder_class(name: str) -> type:
    if name not in VOCODERS:
        raise ConfigError(f"unknown vocoder `{name}`; valid vocoders: {', '.join(sorted(VOCODERS))}")
    module, _, cls = VOCODERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_vocoder(name: str, mel_config, **options) -> Vocoder:
    """A vocoder for log-mels of `mel_config` (a MelConfig or mapping)."""
    from ttsframe.codecs.mel import MelConfig

    return vocoder_class(name)(MelConfig.from_any(mel_config), **options)


__all__ = ["VOCODERS", "Vocoder", "build_vocoder", "vocoder_class"]
