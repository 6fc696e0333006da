"""What the page shows of a result: Markdown-safe text, error lines, and the audio players' samples."""

from __future__ import annotations

import re

import numpy as np


def escape_markdown(text: str) -> str:
    """`text` shown literally by gr.Markdown (an unknown symbol may be `*` or `_`)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def error_markdown(message: str) -> str:
    return f"⚠️ **Error:** {escape_markdown(message)}"


def to_pcm16(wav: np.ndarray) -> np.ndarray:
    """(T,) float in [-1, 1] -> (T,) int16 (what the page's audio player gets, unnormalized)."""
    return (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype(np.int16)
