"""Structured schemas shared by all recipes: the recipe file, its stages, the text frontend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageConfig:
    name: str = "???"
    kind: str = "???"  # a key of ttsframe.pipeline.STAGE_KINDS
    # Stage-specific settings, validated by the stage kind itself (e.g. which model to train).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecipeConfig:
    name: str = "???"
    description: str = ""
    exp_dir: str | None = None  # default exp/<name>
    seed: int = 1234
    defaults: dict[str, str] = field(default_factory=dict)  # config group -> file name
    stages: list[StageConfig] = field(default_factory=list)
    # Recipe-level settings merged over the chosen group files, e.g. {"codec": {"n_codebooks": 4}}.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class TextConfig:
    """Text frontend: text -> symbol sequence."""

    frontend: str = "phonemizer"  # phonemizer | chars | bpe
    language: str = "en-us"
    with_stress: bool = True
    preserve_punctuation: bool = True
    lowercase: bool = True  # chars frontend only
    num_workers: int = 2  # processes for phonemizing a split
    min_symbol_count: int = 20  # tokenize lists the inventory symbols that occur fewer times in train
    tokenizer: str | None = None  # bpe only: a local tokenizer folder (transformers AutoTokenizer; Qwen's for CosyVoice 2)
    special_tokens: list[str] = field(default_factory=list)  # bpe only: tokens added as special, in this order
