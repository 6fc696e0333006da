"""Text frontends: text -> symbol sequence, chosen by name from `FRONTENDS`.

Every frontend normalizes the text (`ttsframe.text.normalize`) and returns one list of
symbols (str) per text. Shared symbol conventions:
    WORD_BOUNDARY (" ") between words, never at either end;
    each punctuation mark in PUNCTUATION is one symbol of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ttsframe.errors import ConfigError
from ttsframe.text.cache import PhonemeCache
from ttsframe.text.inventory import ENGLISH_LETTERS, Inventory
from ttsframe.text.normalize import normalizer_for

WORD_BOUNDARY = " "
# phonemizer's default punctuation marks: the ones it keeps with preserve_punctuation.
PUNCTUATION = frozenset(';:,.!?¡¿—…"«»“”(){}[]')


class TextFrontend(Protocol):
    def normalize(self, text: str) -> str:
        """The text as the frontend reads it (the key of the phoneme cache)."""

    def symbols(self, texts: list[str]) -> list[list[str]]:
        """One symbol sequence per text, in order."""

    def settings(self) -> dict[str, Any]:
        """Everything its output depends on (saved with a vocabulary, part of cache keys)."""

    def symbols_cached(self, texts: list[str], cache_path: str | os.PathLike) -> list[list[str]]:
        """`symbols`, reusing and extending the jsonl cache at `cache_path` (a PhonemeCache)."""

    def inventory(self) -> Inventory | None:
        """Every symbol it can emit for its language (None where that is not recorded)."""


@dataclass(frozen=True)
class CharFrontend:
    """Normalized characters, one symbol each; space is the word boundary."""

    language: str = "en-us"
    lowercase: bool = True
    preserve_punctuation: bool = True

    def normalize(self, text: str) -> str:
        text = normalizer_for(self.language)(text)
        if not self.preserve_punctuation:
            text = " ".join("".join(c for c in text if c not in PUNCTUATION).split())
        return text.lower() if self.lowercase else text

    def symbols(self, texts: list[str]) -> list[list[str]]:
        return [list(self.normalize(text)) for text in texts]

    def symbols_cached(self, texts: list[str], cache_path: str | os.PathLike) -> list[list[str]]:
        return PhonemeCache(cache_path, self).symbols(texts)

    def inventory(self) -> Inventory | None:
        """English letters (both cases unless lowercased), apostrophe and hyphen; None for other languages."""
        if not self.language.startswith("en"):
            return None
        letters = ENGLISH_LETTERS if self.lowercase else ENGLISH_LETTERS + tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        extra = {WORD_BOUNDARY} | (PUNCTUATION if self.preserve_punctuation else set())
        return Inventory(self.language, {c: "" for c in letters}, frozenset(extra))

    def settings(self) -> dict[str, Any]:
        return {"frontend": "chars", "language": self.language, "lowercase": self.lowercase,
                "preserve_punctuation": self.preserve_punctuation}


def _phonemizer(cfg: Any) -> TextFrontend:
    from ttsframe.text.phonemes import PhonemizerFrontend

    return PhonemizerFrontend(language=cfg.language, with_stress=cfg.with_stress,
                              preserve_punctuation=cfg.preserve_punctuation, num_workers=cfg.num_workers)


def _chars(cfg: Any) -> TextFrontend:
    return CharFrontend(language=cfg.language, lowercase=cfg.lowercase,
                        preserve_punctuation=cfg.preserve_punctuation)


# TextConfig.frontend -> builder(cfg). Builders import lazily.
FRONTENDS: dict[str, Callable[[Any], TextFrontend]] = {"phonemizer": _phonemizer, "chars": _chars}


def build_frontend(cfg: Any) -> TextFrontend:
    """Builds the frontend named by `cfg.frontend` from a TextConfig (dataclass or DictConfig)."""
    if cfg.frontend not in FRONTENDS:
        raise ConfigError(f"unknown text frontend `{cfg.frontend}`; valid: {', '.join(FRONTENDS)}")
    return FRONTENDS[cfg.frontend](cfg)
