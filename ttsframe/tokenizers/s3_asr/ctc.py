"""CTC targets from the text frontend's phonemes, the CTC loss, greedy decoding, phone error rate.

Targets are the phones alone: the frontend's word boundaries, punctuation marks and stress marks
(`ttsframe.text` WORD_BOUNDARY, PUNCTUATION, STRESS_MARKS) are dropped. None of them is a sound
of its own: a word boundary or a comma is at most a pause, which CTC's blank already covers, and
a stress mark is a property of the next vowel that the tokens need not separate to carry the
words. Keeping them would ask the encoder to emit symbols with no acoustic segment of their own.

Ids: 0 is the CTC blank; phone k of the table is id k + 1, so n_symbols = len(phones) + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from ttsframe.text.base import PUNCTUATION, WORD_BOUNDARY
from ttsframe.text.phonemes import STRESS_MARKS

BLANK = 0
DROPPED = frozenset({WORD_BOUNDARY}) | PUNCTUATION | STRESS_MARKS


def phones_only(symbols: Sequence[str]) -> list[str]:
    """A frontend symbol sequence without word boundaries, punctuation and stress marks."""
    return [s for s in symbols if s not in DROPPED]


@dataclass(frozen=True)
class PhoneTable:
    """The CTC output classes: blank (id 0) and one id per phone (see the module doc)."""

    phones: tuple[str, ...]

    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[str]]) -> "PhoneTable":
        """Every phone of the given frontend symbol sequences, sorted."""
        return cls(tuple(sorted({p for seq in sequences for p in phones_only(seq)})))

    @property
    def n_symbols(self) -> int:
        return len(self.phones) + 1

    def encode(self, symbols: Sequence[str]) -> list[int]:
        """Frontend symbols -> target ids (dropped symbols removed); KeyError names an unknown phone."""
        index = {p: i + 1 for i, p in enumerate(self.phones)}
        unknown = sorted({p for p in phones_only(symbols) if p not in index})
        if unknown:
            raise KeyError(f"phones {unknown} are not in the table of {len(self.phones)} phones")
        return [index[p] for p in phones_only(symbols)]

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.phones[i - 1] for i in ids if i != BLANK]


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: Sequence[Sequence[int]]) -> torch.Tensor:
    """Mean over rows of the CTC loss per target symbol.

    Args:
        logits: (B, T, C) unnormalised scores, valid for the first lengths[i] frames.
        lengths: (B,) long.
        targets: B id lists (no blanks), each non-empty.
    """
    log_probs = logits.float().log_softmax(dim=-1).transpose(0, 1)  # (T, B, C)
    flat = torch.tensor([i for row in targets for i in row], dtype=torch.long, device=logits.device)
    target_lengths = torch.tensor([len(row) for row in targets], dtype=torch.long, device=logits.device)
    # zero_infinity: a row with more targets (plus repeats) than frames contributes 0, not inf
    return F.ctc_loss(log_probs, flat, lengths, target_lengths, blank=BLANK, reduction="mean", zero_infinity=True)


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """(B, T, C) logits -> per row: the best class per frame, repeats merged, blanks removed."""
    best = logits.argmax(dim=-1).cpu()  # (B, T)
    out = []
    for row, n in zip(best.tolist(), lengths.tolist()):
        row = row[:n]
        out.append([c for t, c in enumerate(row) if c != BLANK and (t == 0 or c != row[t - 1])])
    return out


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, deletions, insertions each cost 1)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def phone_error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> float:
    """Total edit distance over total reference length (corpus-level, as WER is reported)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("phone error rate of empty references")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total
