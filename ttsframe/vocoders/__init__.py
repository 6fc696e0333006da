"""Vocoders: one explicit registry, imported lazily.

Each class takes `(mel_config, **options)`: `build_vocoder("griffin_lim", mel, n_iter=60)`,
`build_vocoder("hifigan", mel, checkpoint=None | "generator.safetensors" | "generator.pth.tar")`
(None: the universal HiFi-GAN generator), `build_vocoder("hift", cosyvoice2_mel(), checkpoint="hift.pt")`
(CosyVoice 2's released vocoder). Training a vocoder: `ttsframe.pipeline.train_vocoder`.
"""

from __future__ import annotations

import importlib

from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import ConfigError
from ttsframe.vocoders.base import Vocoder

# name -> "module:Class"; the class is built as Class(mel_config, **options).
VOCODERS: dict[str, str] = {
    "griffin_lim": "ttsframe.vocoders.griffin_lim:GriffinLim",
    "hifigan": "ttsframe.vocoders.hifigan:HifiGanVocoder",
    "hift": "ttsframe.vocoders.hift:HiFTVocoder",
}


def vocoder_class(name: str) -> type:
    if name not in VOCODERS:
        raise ConfigError(f"unknown vocoder `{name}`; valid vocoders: {', '.join(sorted(VOCODERS))}")
    module, _, cls = VOCODERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_vocoder(name: str, mel_config, **options) -> Vocoder:
    """A vocoder for log-mels of `mel_config` (a MelConfig or mapping)."""
    return vocoder_class(name)(MelConfig.from_any(mel_config), **options)


__all__ = ["VOCODERS", "Vocoder", "build_vocoder", "vocoder_class"]
