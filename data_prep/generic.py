"""The user's own data, in one of two forms.

Folder (`data.root=DIR`): audio files (.wav .flac .ogg .mp3) anywhere under DIR, each with a
same-named .txt transcript beside it. The speaker is the audio file's folder relative to DIR
("spk0" at the top level) unless `data.speaker` sets one for all.

Manifest (`data.manifest=FILE.jsonl`): one JSON object per line,
`{"audio", "text", "speaker"?, "id"?, "split"?, "start"?, "end"?, "language"?}`; a relative
`audio` is relative to the manifest's folder.

Ids come from the audio path relative to DIR (or the manifest's folder) without its extension,
with '.', '/' and whitespace turned into '_' (a manifest's own `id` is cleaned the same way);
clashes get `_2`, `_3`, ... in path (or line) order. Without a `split`, an utterance goes to
train/dev/test by a hash of its id.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import NoneType

from data_prep.common import CorpusConfig, hash_split, read_transcript, require_root
from ttsframe.data.manifest import SPLITS, Candidate
from ttsframe.errors import ConfigError, UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
HINT = "a folder of audio files, each with a same-named .txt transcript; or pass data.manifest=FILE.jsonl"
DEFAULT_SPEAKER = "spk0"
# Manifest field -> the JSON types it accepts.
FIELDS: dict[str, tuple] = {
    "audio": (str,),
    "text": (str, NoneType),
    "speaker": (str,),
    "id": (str,),
    "split": (str,),
    "start": (int, float, NoneType),
    "end": (int, float, NoneType),
    "language": (str,),
}


@dataclass
class Config(CorpusConfig):
    manifest: str | None = None  # a .jsonl file instead of data.root (see the module docstring)
    speaker: str | None = None  # one speaker for every utterance without its own


def find(cfg: Config) -> list[Candidate]:
    """Lists every utterance of the folder or manifest, broken ones with their `problem`."""
    if cfg.manifest and cfg.root:
        raise ConfigError("data.root and data.manifest are both set; pass only one of them")
    candidates = _from_manifest(cfg) if cfg.manifest else _from_folder(cfg)
    return sorted(candidates, key=lambda c: c.id)


def sanitize(name: str) -> str:
    """A webdataset-safe key: '.', '/', '\\' and whitespace become '_'."""
    return re.sub(r"[./\\\s]", "_", name)


def unique(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`, ... the first one not in `taken` (which it joins)."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _from_folder(cfg: Config) -> list[Candidate]:
    root = require_root(cfg, HINT).absolute()
    audio = _audio_files(root)
    if not audio:
        raise UserError(f"data.root={cfg.root}: no {' '.join(AUDIO_SUFFIXES)} files under it; expected {HINT}")
    taken: set[str] = set()
    candidates = []
    for rel in audio:
        utt_id = unique(sanitize(rel.with_suffix("").as_posix()), taken)
        folder = rel.parent.as_posix()
        speaker = cfg.speaker or (DEFAULT_SPEAKER if folder == "." else folder)
        text, problem = read_transcript((root / rel).with_suffix(".txt"))
        split = hash_split(utt_id, cfg.dev_fraction, cfg.test_fraction)
        audio_path = str(root / rel)
        candidates.append(Candidate(utt_id, audio_path, text, speaker, split, language=cfg.language, problem=problem))
    return candidates


def _audio_files(root: Path) -> list[Path]:
    """Audio files under `root` (symlinked folders followed), relative to it, sorted."""
    found = []
    for folder, _, names in os.walk(root, followlinks=True):
        found += [Path(folder, n).relative_to(root) for n in names if Path(n).suffix.lower() in AUDIO_SUFFIXES]
    return sorted(found, key=lambda p: p.as_posix())


def _from_manifest(cfg: Config) -> list[Candidate]:
    path = Path(cfg.manifest).expanduser().absolute()
    if not path.is_file():
        raise UserError(f"data.manifest={cfg.manifest}: no such file ({HINT})")
    rows = _read_rows(path)
    if not rows:
        raise UserError(f"{path}: no lines; expected one JSON object per utterance")
    taken: set[str] = set()
    for where, row in rows:
        if "id" in row:
            utt_id = sanitize(row["id"])
            if not utt_id or utt_id in taken:
                raise UserError(f"{where}: id {row['id']!r} is empty or repeats an earlier line's; make ids unique")
            taken.add(utt_id)
    candidates = []
    for where, row in rows:
        audio = Path(os.path.normpath(path.parent / Path(row["audio"]).expanduser()))
        utt_id = sanitize(row["id"]) if "id" in row else unique(_derived_id(audio, path.parent), taken)
        candidates.append(_manifest_candidate(cfg, utt_id, audio, row))
    return candidates


def _read_rows(path: Path) -> list[tuple[str, dict]]:
    """(file:line, row) for each non-blank line, each checked against FIELDS."""
    rows = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{where}: not UTF-8; save the manifest as UTF-8") from None
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{where}: not valid JSON ({e.msg}); fix the line") from None
        rows.append((where, _checked(row, where)))
    return rows


def _checked(row, where: str) -> dict:
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object like {{\"audio\": \"a.wav\", \"text\": \"...\"}}")
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(FIELDS)}")
    for key in ("audio", "text"):
        if key not in row:
            raise UserError(f"{where}: missing field `{key}`")
    for key, value in row.items():
        if not isinstance(value, FIELDS[key]) or isinstance(value, bool):
            raise UserError(f"{where}: field `{key}` has the wrong type ({type(value).__name__})")
    if "split" in row and row["split"] not in SPLITS:
        raise UserError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
    if not row["audio"]:
        raise UserError(f"{where}: `audio` is empty")
    return row


def _derived_id(audio: Path, base: Path) -> str:
    rel = audio.relative_to(base) if audio.is_relative_to(base) else audio.relative_to(audio.anchor)
    return sanitize(rel.with_suffix("").as_posix())


def _manifest_candidate(cfg: Config, utt_id: str, audio: Path, row: dict) -> Candidate:
    text = " ".join(row["text"].split()) if row["text"] is not None else None
    if not audio.is_file():
        problem = f"audio file not found: {audio}"
    elif text is None:
        problem = "missing transcript (text is null)"
    else:
        problem = None if text else "empty transcript"
    return Candidate(
        id=utt_id,
        audio=str(audio),
        text=text or None,
        speaker=row.get("speaker") or cfg.speaker or DEFAULT_SPEAKER,
        split=row.get("split") or hash_split(utt_id, cfg.dev_fraction, cfg.test_fraction),
        start=row.get("start"),
        end=row.get("end"),
        language=row.get("language", cfg.language),
        problem=problem,
    )
