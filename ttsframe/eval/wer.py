"""WER and CER of ASR transcripts; both sides normalised (numbers spelled out, lower case, no punctuation).

References (the texts that were synthesised) and hypotheses (the ASR transcripts) go through
`normalize_transcript` first, so that only what was said counts, not how it was written:

1. `ttsframe.text.normalize.normalize_english`: numbers, `$`, `%`, `&` and abbreviations spelled
   out ("Dr." -> "Doctor", "$5" -> "five dollars", "751" -> "seven hundred fifty one": no "and");
2. lower case;
3. hyphens and dashes -> space ("fifty-one" -> "fifty one");
4. every other punctuation mark or symbol -> space, except apostrophes inside a word ("it's");
5. whitespace collapsed and stripped.

Rates (computed with jiwer on the normalised strings):

* WER: (substitutions + deletions + insertions) / reference words;
* CER: the same over characters, spaces between words included (jiwer's `cer` convention);
* corpus WER and CER are total edits / total reference words (characters), so that a long
  utterance weighs more than a short one; this is not the mean of the per-utterance rates.

An empty normalised hypothesis (the ASR heard nothing) counts as every reference word deleted.
An empty normalised reference has no defined rate and is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jiwer

from ttsframe.text.normalize import normalize_english

_DASHES_RE = re.compile(r"[-‐‑‒–—―]")
_SYMBOL_RE = re.compile(r"[^\w\s']|_")  # punctuation and symbols; apostrophes are handled apart
_LOOSE_APOSTROPHE_RE = re.compile(r"(?<!\w)'|'(?!\w)")  # quote marks, not "it's"


@dataclass(frozen=True)
class ErrorRates:
    """Corpus rates, word edit counts and one dict per utterance.

    `per_utterance[i]` = {"wer", "cer", "reference_normalized", "hypothesis_normalized"}.
    """

    wer: float
    cer: float
    per_utterance: list[dict]
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int


@dataclass(frozen=True)
class _Counts:
    substitutions: int
    deletions: int
    insertions: int
    reference: int  # reference tokens (words or characters)

    @property
    def edits(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def normalize_transcript(text: str) -> str:
    """The normalisation applied to references and hypotheses (see the module docstring)."""
    text = normalize_english(text).lower()
    text = _SYMBOL_RE.sub(" ", _DASHES_RE.sub(" ", text))
    text = _LOOSE_APOSTROPHE_RE.sub(" ", text)
    return " ".join(text.split())


def error_rates(references: list[str], hypotheses: list[str]) -> ErrorRates:
    """WER and CER of `hypotheses[i]` against `references[i]`, per utterance and over the corpus.

    Raises:
        ValueError: no utterances, lists of different lengths, or a reference that is empty
            once normalised.
    """
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need as many hypotheses as references, at least one: got "
                         f"{len(references)} references and {len(hypotheses)} hypotheses")
    per_utterance, words, chars = [], [], []
    for i, (reference, hypothesis) in enumerate(zip(references, hypotheses)):
        ref, hyp = normalize_transcript(reference), normalize_transcript(hypothesis)
        if not ref:
            raise ValueError(f"reference {i} is empty once normalised: {reference!r}")
        words.append(_word_counts(ref, hyp))
        chars.append(_char_counts(ref, hyp))
        per_utterance.append({"wer": words[-1].edits / words[-1].reference,
                              "cer": chars[-1].edits / chars[-1].reference,
                              "reference_normalized": ref, "hypothesis_normalized": hyp})
    total_words = sum(c.reference for c in words)
    return ErrorRates(
        wer=sum(c.edits for c in words) / total_words,
        cer=sum(c.edits for c in chars) / sum(c.reference for c in chars),
        per_utterance=per_utterance,
        substitutions=sum(c.substitutions for c in words),
        deletions=sum(c.deletions for c in words),
        insertions=sum(c.insertions for c in words),
        reference_words=total_words,
    )


def _word_counts(ref: str, hyp: str) -> _Counts:
    n_ref = len(ref.split())
    if not hyp:  # some jiwer versions refuse an empty hypothesis
        return _Counts(0, n_ref, 0, n_ref)
    out = jiwer.process_words(ref, hyp)
    return _Counts(out.substitutions, out.deletions, out.insertions, n_ref)


def _char_counts(ref: str, hyp: str) -> _Counts:
    if not hyp:
        return _Counts(0, len(ref), 0, len(ref))
    out = jiwer.process_characters(ref, hyp)
    return _Counts(out.substitutions, out.deletions, out.insertions, len(ref))
