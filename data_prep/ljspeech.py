"""LJSpeech-1.1: one speaker, `metadata.csv` (`id|raw text|normalized text`) and `wavs/<id>.wav`.

There is no official split: each utterance goes to train/dev/test by a hash of its id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from data_prep.common import CorpusConfig, hash_split, require_root
from ttsframe.data.manifest import Candidate
from ttsframe.errors import UserError

SPEAKER = "LJ"
HINT = "the LJSpeech-1.1 folder holding metadata.csv and wavs/"
VALID_ID = re.compile(r"[^./\s]+")


@dataclass
class Config(CorpusConfig):
    """LJSpeech needs only the common settings."""


def find(cfg: Config) -> list[Candidate]:
    """Lists every utterance of metadata.csv, plus wavs the metadata does not mention."""
    root = require_root(cfg, HINT).absolute()
    metadata = root / "metadata.csv"
    if not metadata.is_file():
        raise UserError(f"data.root={cfg.root}: no metadata.csv there; point data.root at {HINT}")
    on_disk = {p.stem: p for p in (root / "wavs").glob("*.wav")}
    if not on_disk:
        raise UserError(f"{root / 'wavs'}: no .wav files; extract the whole archive ({HINT})")
    candidates = {}
    for utt_id, text, problem in read_metadata(metadata):
        audio = root / "wavs" / f"{utt_id}.wav"
        if problem is None and utt_id not in on_disk:
            problem = f"audio file not found: {audio}"
        candidates[utt_id] = _candidate(cfg, utt_id, audio, text, problem)
    for utt_id in on_disk.keys() - candidates.keys():
        candidates[utt_id] = _candidate(cfg, utt_id, on_disk[utt_id], None, "missing transcript (not in metadata.csv)")
    return [candidates[k] for k in sorted(candidates)]


def read_metadata(path: Path) -> list[tuple[str, str | None, str | None]]:
    """Parses metadata.csv into (id, text, problem); the normalized column wins over the raw one.

    A line that cannot be parsed at all raises UserError naming the file and line.
    """
    rows = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        fields = raw.split(b"|")
        utt_id = fields[0].decode("utf-8", errors="replace").strip()
        if not 2 <= len(fields) <= 3 or not VALID_ID.fullmatch(utt_id):
            raise UserError(f"{path}:{lineno}: expected `id|raw text|normalized text`; fix or remove the line")
        if utt_id in seen:
            raise UserError(f"{path}:{lineno}: id {utt_id} already on line {seen[utt_id]}; remove one of them")
        seen[utt_id] = lineno
        try:
            texts = [f.decode("utf-8") for f in fields[1:]]
        except UnicodeDecodeError:
            rows.append((utt_id, None, f"transcript not UTF-8 (metadata.csv:{lineno})"))
            continue
        text = " ".join(texts[-1].split()) or " ".join(texts[0].split())
        rows.append((utt_id, text or None, None if text else f"empty transcript (metadata.csv:{lineno})"))
    return rows


def _candidate(cfg: Config, utt_id: str, audio: Path, text: str | None, problem: str | None) -> Candidate:
    split = hash_split(utt_id, cfg.dev_fraction, cfg.test_fraction)
    return Candidate(utt_id, str(audio), text, SPEAKER, split, language=cfg.language, problem=problem)
