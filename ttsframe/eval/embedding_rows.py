"""Helpers every speaker encoder shares: which clips can be embedded, and unit-norm rows."""

from __future__ import annotations

import numpy as np


def has_signal(wav: np.ndarray) -> bool:
    """Whether a clip (T,) has a non-zero sample (an empty or silent one has no embedding)."""
    return wav.size > 0 and bool(np.any(wav != 0))


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 with each row of L2 norm 1."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
