"""Shared fixtures for the corpus parser tests: tiny generated audio files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture
def write_tone() -> Callable[[Path], Path]:
    """Writes 0.3 s of a 440 Hz sine at 16 kHz to a path (format from its suffix), making folders."""

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(4800) / 16000
        sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
        return path

    return write


@pytest.fixture
def write_text() -> Callable[[Path, str | bytes], Path]:
    """Writes a transcript (str as UTF-8, bytes as they are), making folders."""

    def write(path: Path, content: str | bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)
        return path

    return write
