"""Settings and helpers shared by the corpus parsers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ttsframe.errors import UserError


@dataclass
class CorpusConfig:
    corpus: str = "???"  # key of data_prep.CORPORA
    root: str | None = None  # corpus folder on disk
    language: str = "en-us"
    min_duration: float = 0.5  # seconds; shorter -> rejected
    max_duration: float = 20.0  # seconds; longer -> rejected
    silence_db: float = -50.0  # peak level in dBFS at or below which audio counts as silent
    dev_fraction: float = 0.02  # corpora without official splits: share of utterances for dev
    test_fraction: float = 0.02  # ... and for test
    num_workers: int = 2  # processes reading audio during validation


def require_root(cfg: CorpusConfig, hint: str) -> Path:
    """The corpus root as a Path, or a one-line error saying what to pass."""
    if not cfg.root:
        raise UserError(f"data.root is not set: pass data.root=DIR ({hint})")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root={cfg.root}: no such folder ({hint})")
    return root


def hash_split(key: str, dev_fraction: float, test_fraction: float) -> str:
    """A deterministic split from a stable hash of `key` (an utterance or speaker id)."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < test_fraction:
        return "test"
    if bucket < test_fraction + dev_fraction:
        return "dev"
    return "train"


def read_transcript(path: Path) -> tuple[str | None, str | None]:
    """Returns (text, problem): the stripped UTF-8 text, or None and why it is unusable."""
    if not path.is_file():
        return None, f"missing transcript ({path.name})"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        return None, f"transcript not UTF-8 ({path.name})"
    if not text:
        return None, f"empty transcript ({path.name})"
    return " ".join(text.split()), None
