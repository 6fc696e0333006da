"""Vocabulary: symbol <-> id, built from the train split and saved beside the shards.

Ids 0..3 are the specials <pad>, <unk>, <bos>, <eos>; then, in sorted (code point) order, the
symbols seen in training together with the frontend's whole inventory for the language
(`ttsframe.text.inventory`), so that the same symbols always give the same ids and a model can
read a symbol its corpus lacked. `untrained` lists the inventory symbols that training never
saw (their embeddings stay at their initial values). The saved file also holds the frontend
settings (espeak-ng version included) that produced the symbols.

Unknown symbols (outside the vocabulary: another script, a symbol outside the inventory):
`encode` fails by default, naming them, since a silent <unk> hides a frontend mismatch;
`unknown="unk"` maps them to <unk> instead (e.g. for free-form synthesis text).

A BPE tokenizer's vocabulary (`Vocabulary.of_tokenizer`, the `bpe` frontend) keeps the tokenizer's
own ids instead: its tokens in id order, no specials of ours (`specials` empty, `unk_id` None).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from ttsframe.errors import UserError
from ttsframe.utils.atomic import write_json

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(4)
_FORMAT = 1


class Vocabulary:
    """Args:
        symbols: all symbols in id order, the specials first.
        settings: the frontend settings the symbols came from (`TextFrontend.settings()`).
        untrained: symbols of the vocabulary that the training text never contained.
        specials: SPECIALS, or () for a tokenizer's own ids (`of_tokenizer`).
    """

    pad_id, bos_id, eos_id = PAD, BOS, EOS

    def __init__(self, symbols: list[str], settings: dict[str, Any] | None = None,
                 untrained: Iterable[str] = (), specials: tuple[str, ...] = SPECIALS):
        self.specials = tuple(specials)
        if self.specials not in (SPECIALS, ()):
            raise ValueError(f"specials are {SPECIALS} or none, got {self.specials}")
        if tuple(symbols[: len(self.specials)]) != self.specials:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {symbols[:len(SPECIALS)]}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("duplicate symbols in the vocabulary")
        self.symbols = list(symbols)
        self.settings = dict(settings or {})
        self._ids = {s: i for i, s in enumerate(self.symbols)}
        self.untrained = sorted(untrained)
        if not set(self.untrained) <= set(self.symbols):
            raise ValueError("untrained symbols must be in the vocabulary")

    @classmethod
    def build(cls, sequences: Iterable[list[str]], settings: dict[str, Any] | None = None,
              inventory: Iterable[str] = ()) -> Vocabulary:
        """The specials, then every symbol of `sequences` and of `inventory` in sorted order."""
        seen = {symbol for seq in sequences for symbol in seq} - set(SPECIALS)
        extra = set(inventory) - seen - set(SPECIALS)
        return cls([*SPECIALS, *sorted(seen | extra)], settings, untrained=extra)

    @classmethod
    def of_tokenizer(cls, tokens: list[str], settings: dict[str, Any] | None = None) -> Vocabulary:
        """A tokenizer's tokens in its id order (`tokens[i]` has id i), with no specials of ours."""
        return cls(tokens, settings, specials=())

    @property
    def unk_id(self) -> int | None:
        """<unk>'s id; None in a tokenizer's vocabulary (its tokenizer emits no unknown tokens)."""
        return UNK if self.specials else None

    def encode(self, symbols: list[str], unknown: str = "error", text: str | None = None) -> list[int]:
        """Symbols (T,) -> ids (T,).

        Args:
            unknown: "error" raises on symbols not in the vocabulary; "unk" maps them to <unk>.
            text: the source text, quoted in the error.
        """
        if unknown not in ("error", "unk"):
            raise ValueError(f'unknown={unknown!r}; valid: "error", "unk"')
        ids = [self._ids.get(symbol, UNK) for symbol in symbols]
        if unknown == "error" or self.unk_id is None:
            bad = [f"{s!r} at {i}" for i, s in enumerate(symbols) if s not in self._ids]
            if bad:
                where = f" in {text!r}" if text is not None else ""
                raise UserError(
                    f"symbols not in the vocabulary{where}: {', '.join(bad)} (symbol positions). The "
                    "vocabulary holds the frontend's inventory and the train split's symbols: add such "
                    'texts to the train split and rebuild the vocabulary, or encode with unknown="unk" '
                    "to map them to <unk>")
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids (T,) -> symbols (T,)."""
        out = []
        for i in map(int, ids):
            if not 0 <= i < len(self.symbols):
                raise ValueError(f"id {i} is outside the vocabulary (size {len(self.symbols)})")
            out.append(self.symbols[i])
        return out

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Raises UserError if `settings` differ from those this vocabulary was built with."""
        diff = {k for k in self.settings.keys() | settings.keys() if self.settings.get(k) != settings.get(k)}
        if diff:
            pairs = ", ".join(f"{k}: {self.settings.get(k)!r} -> {settings.get(k)!r}" for k in sorted(diff))
            raise UserError(f"the text frontend differs from the vocabulary's ({pairs}); "
                            "rebuild the vocabulary (rerun tokenization) or restore those settings")

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, {"format": _FORMAT, "symbols": self.symbols, "settings": self.settings,
                          "untrained": self.untrained, **({} if self.specials else {"specials": []})})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != _FORMAT:
            raise UserError(f"{path}: not a ttsframe vocabulary (format {data.get('format')!r}, expected {_FORMAT})")
        return cls(data["symbols"], data.get("settings"), data.get("untrained", ()),
                   tuple(data.get("specials", SPECIALS)))

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and ((self.symbols, self.settings, self.untrained, self.specials)
                                                  == (other.symbols, other.settings, other.untrained, other.specials))
