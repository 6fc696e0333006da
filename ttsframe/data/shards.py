"""Webdataset shards and the `<split>.index.json` beside them.

A shard sample is a dict with `__key__` (utterance id), `tokens.npy` int32 (L,) text ids,
the acoustic representation (`codes.npy` int16 (K, T) or `mel.npy` float16 (T, n_mels)) and
`meta.json` ({id, speaker, duration, text, phonemes, frames}). Shards are written to a temporary
name and renamed, so a shard file on disk is always complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import webdataset as wds

from ttsframe.utils.atomic import atomic_path, write_json

INDEX_VERSION = 1
FEATURE_KEYS = ("codes.npy", "mel.npy")


@dataclass
class ShardInfo:
    file: str  # name relative to the shard folder
    samples: int
    frames: int


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:06d}.tar"


def sample_frames(sample: dict) -> int:
    if "codes.npy" in sample:
        return int(sample["codes.npy"].shape[-1])  # (K, T)
    if "mel.npy" in sample:
        return int(sample["mel.npy"].shape[0])  # (T, n_mels)
    raise KeyError(f"sample {sample.get('__key__')} has none of {FEATURE_KEYS}")


def write_shard(path: Path, samples: Iterable[dict]) -> ShardInfo:
    """Writes `samples` into the tar at `path` atomically; returns its counts."""
    count = frames = 0
    with atomic_path(path) as tmp:
        with wds.TarWriter(str(tmp)) as sink:
            for sample in samples:
                sink.write(sample)
                count += 1
                frames += sample_frames(sample)
    return ShardInfo(path.name, count, frames)


def index_path(shard_dir: Path, split: str) -> Path:
    return Path(shard_dir) / f"{split}.index.json"


def write_index(shard_dir: Path, split: str, shards: list[ShardInfo], **extra) -> dict:
    index = {
        "version": INDEX_VERSION,
        "split": split,
        "samples": sum(s.samples for s in shards),
        "frames": sum(s.frames for s in shards),
        "shards": [asdict(s) for s in shards],
        **extra,
    }
    write_json(index_path(shard_dir, split), index)
    return index


def read_index(shard_dir: Path, split: str) -> dict:
    path = index_path(shard_dir, split)
    if not path.is_file():
        from ttsframe.errors import UserError

        raise UserError(f"{path} not found: run the tokenize stage first (make recipe=R stage=1)")
    return json.loads(path.read_text(encoding="utf-8"))


def shard_urls(shard_dir: Path, index: dict) -> list[str]:
    return [str(Path(shard_dir) / s["file"]) for s in index["shards"]]
