"""Text frontends: text -> symbol sequence, chosen by name from `FRONTENDS`.

Every frontend normalizes the text (`ttsframe.text.normalize`) and returns one list of
symbols (str) per text; what they share (the `TextFrontend` interface, WORD_BOUNDARY,
PUNCTUATION) is in `ttsframe.text.base`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from ttsframe.errors import ConfigError
from ttsframe.text.base import PUNCTUATION, WORD_BOUNDARY, TextFrontend
from ttsframe.text.cache import PhonemeCache
from ttsframe.text.inventory import ENGLISH_LETTERS, Inventory
from ttsframe.text.normalize import normalizer_for


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


def _bpe(cfg: Any) -> TextFrontend:
    from ttsframe.text.bpe import BpeFrontend

    if not cfg.tokenizer:
        raise ConfigError("text frontend `bpe` needs text.tokenizer=<a local tokenizer folder>")
    return BpeFrontend(cfg.tokenizer, cfg.language, list(cfg.special_tokens))


# TextConfig.frontend -> builder(cfg). Builders import lazily.
FRONTENDS: dict[str, Callable[[Any], TextFrontend]] = {"phonemizer": _phonemizer, "chars": _chars, "bpe": _bpe}


def build_frontend(cfg: Any) -> TextFrontend:
    """Builds the frontend named by `cfg.frontend` from a TextConfig (dataclass or DictConfig)."""
    if cfg.frontend not in FRONTENDS:
        raise ConfigError(f"unknown text frontend `{cfg.frontend}`; valid: {', '.join(FRONTENDS)}")
    return FRONTENDS[cfg.frontend](cfg)
