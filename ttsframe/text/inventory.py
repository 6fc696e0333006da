"""Symbol inventories: every symbol a text frontend can emit for a language.

A vocabulary holds its frontend's whole inventory, not only the symbols its training text
happened to contain, so a release can read any sentence of the language; `coverage` counts how
often each inventory symbol occurs in a split, so a thin corpus is seen before training.

`EN_US_PHONES` is measured, not assumed: the phones espeak-ng 1.52 (the espeakng-loader wheel)
emits for `en-us` over the 117,493 alphabetic words of the CMU Pronouncing Dictionary, each
with a word that produces it (a test re-checks every word, so an espeak-ng change that renames
a phone fails loudly). The tail from `x` on comes from loanwords and names (Bach, croissant,
Llano, ...): English text uses them, so they belong to the inventory too. espeak's third stress
mark ("-") never occurs in en-us output and is left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

# phone -> a word whose en-us phonemes contain it
EN_US_PHONES: dict[str, str] = {
    "n": "no", "s": "see", "ɪ": "sit", "l": "let", "k": "cat", "t": "ten", "ɹ": "red", "ə": "lemon",
    "d": "do", "m": "me", "æ": "cat", "ɛ": "bed", "z": "zoo", "b": "be", "ɚ": "teacher", "p": "pen",
    "oʊ": "go", "ɑː": "hot", "i": "happy", "eɪ": "day", "f": "fish", "ɡ": "go", "iː": "see", "aɪ": "my",
    "ŋ": "sing", "v": "very", "ʌ": "cup", "uː": "blue", "h": "hat", "ᵻ": "wanted", "ʃ": "she",
    "ɾ": "water", "w": "we", "dʒ": "job", "əl": "little", "ɜː": "bird", "ɑːɹ": "car", "ɐ": "about",
    "j": "yes", "ɔː": "thought", "tʃ": "chair", "ɔːɹ": "door", "aʊ": "now", "θ": "thin", "iə": "museum",
    "ɔ": "often", "ʊ": "book", "ɔɪ": "boy", "ɛɹ": "hair", "ʊɹ": "tour", "ɪɹ": "here", "aɪɚ": "fire",
    "ð": "this", "ʒ": "measure", "ʔ": "button", "n̩": "button", "aɪə": "science",
    # loanwords and names
    "x": "Bach", "r": "arrhythmia", "ɬ": "Llano", "ɑ̃": "croissant", "nʲ": "jalapeno", "ɡʲ": "Argyll",
    "ɔ̃": "denouement", "o": "Tolkien", "iːː": "Wii",
}
EN_STRESS_MARKS = ("ˈ", "ˌ")
# language -> (phone -> example word); a language missing here has no inventory: its
# vocabulary holds the symbols of its training text only.
PHONE_INVENTORIES: dict[str, dict[str, str]] = {"en-us": EN_US_PHONES}
# characters the chars frontend emits for English text after normalisation (besides punctuation)
ENGLISH_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz") + ("'", "-")


@dataclass(frozen=True)
class Inventory:
    """What a frontend can emit for a language.

    Args:
        units: the symbols a training corpus should cover (phones and stress marks, or letters),
            each with an example word ("" where none is recorded).
        extra: symbols that belong to the vocabulary without a coverage target (word boundary,
            punctuation).
    """

    language: str
    units: dict[str, str]
    extra: frozenset[str] = frozenset()

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.units) | self.extra


@dataclass(frozen=True)
class Coverage:
    """How often each inventory unit occurs in a split (`coverage`)."""

    counts: dict[str, int]  # unit -> occurrences
    min_count: int
    outside: dict[str, int]  # symbols of the split that are not in the inventory -> occurrences

    @property
    def rare(self) -> dict[str, int]:
        """Units that occur fewer than `min_count` times, rarest first."""
        return dict(sorted(((u, c) for u, c in self.counts.items() if c < self.min_count), key=lambda uc: uc[1]))

    def summary(self, what: str = "train") -> str:
        """One line for the log, naming the rare units with their counts."""
        n = len(self.counts)
        if not self.rare:
            line = f"all {n} inventory symbols occur >= {self.min_count} times in {what} (fewest: " \
                   f"{min(self.counts.values()) if self.counts else 0})"
        else:
            listed = ", ".join(f"{u!r} {c}" for u, c in self.rare.items())
            line = f"{len(self.rare)} of {n} inventory symbols occur fewer than {self.min_count} times in {what}: {listed}"
        if self.outside:
            line += f"; outside the inventory: {', '.join(f'{s!r} {c}' for s, c in sorted(self.outside.items()))}"
        return line

    def to_json(self) -> dict:
        return {"min_count": self.min_count, "counts": self.counts, "rare": self.rare, "outside": self.outside}


def coverage(inventory: Inventory, sequences: Iterable[list[str]], min_count: int = 20) -> Coverage:
    """Occurrences of every unit of `inventory` in `sequences` (symbol lists)."""
    seen = Counter(symbol for seq in sequences for symbol in seq)
    counts = {unit: seen.get(unit, 0) for unit in sorted(inventory.units)}
    outside = {s: c for s, c in seen.items() if s not in inventory.symbols}
    return Coverage(counts, min_count, outside)
