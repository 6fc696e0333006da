"""Manifest records: one utterance per jsonl line (see DESIGN.md, data contracts)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ttsframe.utils.atomic import read_jsonl, write_jsonl

SPLITS = ("train", "dev", "test")


@dataclass
class Candidate:
    """An utterance as a corpus parser found it, before validation.

    `problem` is set by the parser when it already knows the utterance is unusable (missing or
    unreadable transcript); validation then rejects it with that reason.
    """

    id: str
    audio: str
    text: str | None
    speaker: str
    split: str = "train"
    start: float | None = None
    end: float | None = None
    language: str = "en-us"
    problem: str | None = None


@dataclass
class Utterance:
    """A validated manifest line. `sample_rate` and `channels` are the file's own."""

    id: str
    audio: str
    text: str
    speaker: str
    duration: float
    sample_rate: int
    channels: int = 1
    start: float | None = None
    end: float | None = None
    language: str = "en-us"

    def to_json(self) -> dict:
        row = dataclasses.asdict(self)
        return {k: v for k, v in row.items() if v is not None}

    @classmethod
    def from_json(cls, row: dict, source: str = "manifest") -> "Utterance":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(row) - names
        missing = {"id", "audio", "text", "speaker", "duration", "sample_rate"} - set(row)
        if unknown or missing:
            raise ValueError(
                f"{source}: bad manifest line {row.get('id', '?')!r}: "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        return cls(**row)


def read_manifest(path: str | Path) -> list[Utterance]:
    return [Utterance.from_json(row, str(path)) for row in read_jsonl(path)]


def write_manifest(path: str | Path, utterances: list[Utterance]) -> int:
    return write_jsonl(path, (u.to_json() for u in utterances))
