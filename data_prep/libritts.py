"""LibriTTS and LibriTTS-R (same layout).

    <root>/<subset>/<speaker>/<chapter>/<utt>.wav
    <root>/<subset>/<speaker>/<chapter>/<utt>.normalized.txt   (and <utt>.original.txt)

Subsets map to splits by their prefix: train-* -> train, dev-* -> dev, test-* -> test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_prep.common import CorpusConfig, read_transcript, require_root
from ttsframe.data.manifest import SPLITS, Candidate
from ttsframe.errors import ConfigError, UserError

HINT = "the LibriTTS (or LibriTTS_R) folder holding train-clean-100/, dev-clean/, ..."
TEXT_FIELDS = ("normalized", "original")


@dataclass
class Config(CorpusConfig):
    subsets: list[str] = field(default_factory=lambda: ["train-clean-100", "dev-clean", "test-clean"])
    text_field: str = "normalized"  # normalized | original: which <utt>.<field>.txt to read


def find(cfg: Config) -> list[Candidate]:
    """Lists every .wav of the chosen subsets with its transcript (or why it has none)."""
    if cfg.text_field not in TEXT_FIELDS:
        raise ConfigError(f"data.text_field={cfg.text_field}: expected one of {', '.join(TEXT_FIELDS)}")
    if not cfg.subsets:
        raise ConfigError("data.subsets is empty; e.g. data.subsets=[train-clean-100,dev-clean,test-clean]")
    root = require_root(cfg, HINT).absolute()
    candidates = []
    for subset in dict.fromkeys(cfg.subsets):
        for wav in _subset_wavs(root, subset):
            text, problem = read_transcript(wav.with_suffix(f".{cfg.text_field}.txt"))
            speaker = wav.parent.parent.name
            candidates.append(
                Candidate(wav.stem, str(wav), text, speaker, _split_of(subset), language=cfg.language, problem=problem)
            )
    return sorted(candidates, key=lambda c: c.id)


def _split_of(subset: str) -> str | None:
    prefix, dash, _ = subset.partition("-")
    return prefix if dash and prefix in SPLITS else None


def _subset_wavs(root: Path, subset: str) -> list[Path]:
    if _split_of(subset) is None:
        raise ConfigError(f"data.subsets: `{subset}` is not a LibriTTS subset (names start with train-, dev- or test-)")
    folder = root / subset
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and _split_of(p.name))
        if not present:
            raise UserError(f"data.root={root}: no LibriTTS subset folders there; point data.root at {HINT}")
        raise UserError(f"{folder}: subset `{subset}` not found; subsets in data.root: {', '.join(present)}")
    wavs = sorted(folder.glob("*/*/*.wav"))
    if not wavs:
        raise UserError(f"{folder}: no <speaker>/<chapter>/<utt>.wav files; is the subset fully extracted?")
    return wavs
