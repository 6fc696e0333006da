"""A Hugging Face hub cache on disk, as huggingface_hub lays one out, for tests of hub ids (no network)."""

from __future__ import annotations

import shutil
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root: Path, repo: str, folder: Path, commit: str = COMMIT) -> Path:
    """`root` as a hub cache holding the files of `folder` (sub-folders too) as the main revision of model
    repo `repo`; returns `root`."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return root
