"""What every text frontend shares: the `TextFrontend` interface and the symbol conventions.

    WORD_BOUNDARY (" ") between words, never at either end;
    each punctuation mark in PUNCTUATION is one symbol of its own.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from ttsframe.text.inventory import Inventory

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
