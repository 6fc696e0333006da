"""A jsonl cache of symbol sequences, so re-running tokenization does not re-phonemize.

Each line is {"key": sha256(frontend settings + normalized text), "symbols": [...]}: a change
of the text, its normalisation, the frontend settings or the espeak-ng version misses. Several
frontends may share one file. Appends are whole lines written under an exclusive lock, so
concurrent writers never interleave; a line cut short by a crash is ignored on reading.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path

from ttsframe.text.base import TextFrontend

log = logging.getLogger(__name__)


class PhonemeCache:
    """Symbols of `frontend` for texts, from `path` where seen before.

    Args:
        path: the jsonl file (created on the first miss).
        frontend: computes the misses, in one `symbols` call per lookup.
    """

    def __init__(self, path: str | os.PathLike, frontend: TextFrontend):
        self.path = Path(path)
        self.frontend = frontend
        self._prefix = json.dumps(frontend.settings(), sort_keys=True) + "\n"
        self._entries = self._read()

    def key(self, text: str) -> str:
        return hashlib.sha256((self._prefix + self.frontend.normalize(text)).encode()).hexdigest()

    def symbols(self, texts: list[str]) -> list[list[str]]:
        """Like `frontend.symbols(texts)`; computes and appends only the texts not cached."""
        keys = [self.key(text) for text in texts]
        missing = {key: text for key, text in zip(keys, texts) if key not in self._entries}
        if missing:
            fresh = dict(zip(missing, self.frontend.symbols(list(missing.values()))))
            self._append(fresh)
            self._entries.update(fresh)
        return [list(self._entries[key]) for key in keys]

    def __len__(self) -> int:
        return len(self._entries)

    def _read(self) -> dict[str, list[str]]:
        if not self.path.is_file():
            return {}
        entries, bad = {}, 0
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    entries[row["key"]] = row["symbols"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    bad += 1
        if bad:
            log.warning("%s: ignored %d unreadable line(s) (cut short by a crash?)", self.path, bad)
        return entries

    def _append(self, entries: dict[str, list[str]]) -> None:
        data = "".join(json.dumps({"key": k, "symbols": v}, ensure_ascii=False) + "\n" for k, v in entries.items())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:  # after a crash mid-line, start a fresh line
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        data = "\n" + data
                f.write(data.encode("utf-8"))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
