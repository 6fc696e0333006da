"""Phonemizer frontend: text -> IPA symbols from espeak-ng (the espeakng-loader copy).

Symbols, e.g. "Hello world!" (en-us) ->
    ["h", "ə", "l", "ˈ", "oʊ", " ", "w", "ˈ", "ɜː", "l", "d", "!"]
  - a phone is what espeak-ng outputs between its phone separators: length marks and
    diphthongs stay attached ("ɜː", "oʊ", "tʃ");
  - stress marks (STRESS_MARKS: "ˈ" primary, "ˌ" secondary, espeak's "-" unstressed link) are
    symbols of their own, placed before the phone they mark; this keeps the phone inventory
    free of stressed copies of each vowel. with_stress=False drops them;
  - WORD_BOUNDARY between words; each punctuation mark is one symbol (preserve_punctuation).
espeak-ng's language-switch flags such as "(fr)" are removed.

One EspeakBackend per thread and process (building one is slow; one shared across threads
corrupts its output). Lists longer than PARALLEL_MIN_TEXTS are split over `num_workers`
spawned processes (so a calling script needs an `if __name__ == "__main__":` guard); the
output order is the input order.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from ttsframe.errors import UserError
from ttsframe.text.base import PUNCTUATION, WORD_BOUNDARY
from ttsframe.text.cache import PhonemeCache
from ttsframe.text.espeak import configure_espeak
from ttsframe.text.inventory import EN_STRESS_MARKS, PHONE_INVENTORIES, Inventory
from ttsframe.text.normalize import normalizer_for

# phonemizer logs a "words count mismatch" warning per text when punctuation is kept; our symbol
# sequences do not rely on word alignment, so only its errors are shown.
_QUIET = logging.getLogger("ttsframe.phonemizer")
_QUIET.setLevel(logging.ERROR)

STRESS_MARKS = frozenset("ˈˌ-")
PARALLEL_MIN_TEXTS = 2000  # below this, starting worker processes costs more than it saves
_PHONE_SEP = "|"
_LOCAL = threading.local()


@dataclass(frozen=True)
class PhonemizerFrontend:
    """espeak-ng IPA phones, stress marks, word boundaries and punctuation (see module doc)."""

    language: str = "en-us"
    with_stress: bool = True
    preserve_punctuation: bool = True
    num_workers: int = 1

    def normalize(self, text: str) -> str:
        return normalizer_for(self.language)(text)

    def symbols(self, texts: list[str]) -> list[list[str]]:
        """One symbol list per text, in order; an empty text gives [].

        Raises:
            UserError: a non-empty text phonemizes to nothing, or the language is unknown.
        """
        texts = list(texts)
        if self.num_workers <= 1 or len(texts) <= PARALLEL_MIN_TEXTS:
            return _phonemize(self._options(), texts)
        size = math.ceil(len(texts) / (4 * self.num_workers))
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        # spawn, not fork: the parent may hold torch threads or an espeak instance.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.num_workers, mp_context=context) as pool:
            return [s for chunk in pool.map(_phonemize, repeat(self._options()), chunks) for s in chunk]

    def symbols_cached(self, texts: list[str], cache_path: str | os.PathLike) -> list[list[str]]:
        """`symbols`, phonemizing only the texts not yet in the jsonl cache at `cache_path`."""
        return PhonemeCache(cache_path, self).symbols(texts)

    def inventory(self) -> Inventory | None:
        """Every symbol this frontend emits for its language (`ttsframe.text.inventory`), or
        None for a language without a recorded phone inventory."""
        phones = PHONE_INVENTORIES.get(self.language)
        if phones is None:
            return None
        units = {**phones, **({mark: "" for mark in EN_STRESS_MARKS} if self.with_stress else {})}
        extra = {WORD_BOUNDARY} | (PUNCTUATION if self.preserve_punctuation else set())
        return Inventory(self.language, units, frozenset(extra))

    def settings(self) -> dict[str, Any]:
        import phonemizer

        return {"frontend": "phonemizer", "language": self.language, "with_stress": self.with_stress,
                "preserve_punctuation": self.preserve_punctuation,
                "espeak_version": configure_espeak().version, "phonemizer_version": phonemizer.__version__}

    def _options(self) -> tuple[str, bool, bool]:
        return self.language, self.with_stress, self.preserve_punctuation


def split_phonemes(line: str) -> list[str]:
    """Phonemizer output ("|" between phones, " " between words) -> symbols (see module doc)."""
    out: list[str] = []
    for word in line.split(" "):
        symbols = []
        for token in word.split(_PHONE_SEP):
            phone = ""
            for char in token:
                if char in PUNCTUATION or char in STRESS_MARKS:
                    symbols += [phone, char] if phone else [char]
                    phone = ""
                else:
                    phone += char
            if phone:
                symbols.append(phone)
        if symbols:
            out += [WORD_BOUNDARY, *symbols] if out else symbols
    return out


def _phonemize(options: tuple[str, bool, bool], texts: list[str]) -> list[list[str]]:
    from phonemizer.separator import Separator

    backend, normalize = _backend(options), normalizer_for(options[0])
    separator = Separator(phone=_PHONE_SEP, word=" ", syllable="")
    out = []
    for text in map(normalize, texts):
        # One text per call: phonemizer's punctuation restoration misaligns the lines of a
        # list that holds an empty line, and costs the same either way.
        symbols = split_phonemes(backend.phonemize([text], separator=separator, strip=True)[0]) if text else []
        if text and not symbols:
            raise UserError(f"espeak-ng ({options[0]}) gives no phonemes for the text {text!r}; "
                            "fix or drop this text (is it in the configured language?)")
        out.append(symbols)
    return out


def _backend(options: tuple[str, bool, bool]):
    """This thread's EspeakBackend for (language, with_stress, preserve_punctuation)."""
    backends = _LOCAL.__dict__.setdefault("backends", {})
    if options not in backends:
        configure_espeak()
        from phonemizer.backend import EspeakBackend

        language, with_stress, preserve_punctuation = options
        try:
            backends[options] = EspeakBackend(language, with_stress=with_stress,
                                              preserve_punctuation=preserve_punctuation,
                                              language_switch="remove-flags",
                                              words_mismatch="ignore", logger=_QUIET)
        except RuntimeError as e:
            raise UserError(f"text.language `{language}`: {e} (e.g. en-us, en-gb, fr-fr, de)") from None
    return backends[options]
