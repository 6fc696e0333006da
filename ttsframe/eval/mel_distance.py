"""Mel distance: how far two utterances of the same text are apart, after aligning them in time.

    mel_distance(a, b, rate) = mean over the DTW path of  mean_m |log-mel_a[i, m] - log-mel_b[j, m]|

It is MCD-like (mel cepstral distortion compares DTW-aligned mel cepstra in dB) but simpler to
read: the unit is the natural log of the mel magnitude, so 0.1 is a ~10 % magnitude error per
band and frame on average. Details:

* features: `ttsframe.codecs.mel.MelSpectrogram` with `analysis_config(sample_rate)`: a ~46 ms
  window (n_fft the nearest power of two; 1024 at 22.05 and 24 kHz), hop n_fft / 4, 80 bands
  (40 below 16 kHz) up to min(8 kHz, rate / 2), log floor 1e-5, so both inputs see the same
  analysis whatever produced them;
* alignment: dynamic time warping with steps (1, 0), (0, 1), (1, 1) and no band constraint, on
  the per-frame-pair cost mean_m |a_i - b_j|; the path with the least summed cost is kept and
  the distance is that sum divided by the number of frame pairs on the path;
* nothing is trimmed: leading and trailing silence count (as silence aligned with silence
  costs ~0, a long pause against speech is what it costs).

Identical audio gives exactly 0; the same content spoken slower stays small; other content is
larger. Pure numpy (scipy's cdist for the cost matrix): O(T_a * T_b) time and memory.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial.distance import cdist

from ttsframe.codecs.mel import MelConfig, MelSpectrogram

WINDOW_SECONDS = 0.046


def analysis_config(sample_rate: int) -> MelConfig:
    """The mel analysis used for a given sample rate (see the module docstring)."""
    n_fft = 2 ** round(math.log2(WINDOW_SECONDS * sample_rate))
    return MelConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, win_length=n_fft,
                     n_mels=80 if sample_rate >= 16000 else 40, fmax=min(8000.0, sample_rate / 2))


def log_mel(wav: np.ndarray, config: MelConfig) -> np.ndarray:
    """(T_wav,) -> (T, n_mels) float64 log-mel frames."""
    with torch.inference_mode():
        mel = MelSpectrogram(config)(torch.as_tensor(np.asarray(wav, dtype=np.float32).reshape(1, -1)))
    return mel[0].T.double().numpy()


def dtw(cost: np.ndarray) -> tuple[float, int]:
    """Least-cost monotonic alignment of a (T_a, T_b) cost matrix, steps (1, 0), (0, 1), (1, 1).

    Returns the summed cost of the best path from (0, 0) to (T_a - 1, T_b - 1) and its number
    of cells. Anti-diagonals are processed as vectors: cell (i, j) needs only diagonals i + j - 1
    and i + j - 2.
    """
    total, steps, _ = _accumulate(cost)
    return float(total[-1, -1]), int(steps[-1, -1])


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """The best path of `dtw(cost)` as (L, 2) int64 cells (i, j), from (0, 0) to (T_a - 1, T_b - 1)."""
    _, _, moves = _accumulate(cost)
    i, j = cost.shape
    path = []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        move = moves[i, j]  # 0: from (i - 1, j - 1), 1: from (i - 1, j), 2: from (i, j - 1)
        i, j = i - (move != 2), j - (move != 1)
    return np.array(path[::-1], dtype=np.int64).reshape(-1, 2)


def _accumulate(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-based (T_a + 1, T_b + 1) tables of DTW: least summed cost, path length, last move."""
    n_a, n_b = cost.shape
    total = np.full((n_a + 1, n_b + 1), np.inf)  # 1-based: total[i, j] ends at cost[i - 1, j - 1]
    steps = np.zeros((n_a + 1, n_b + 1), dtype=np.int64)
    moves = np.zeros((n_a + 1, n_b + 1), dtype=np.int8)
    total[0, 0] = 0.0
    for d in range(2, n_a + n_b + 1):
        i = np.arange(max(1, d - n_b), min(n_a, d - 1) + 1)
        j = d - i
        candidates = np.stack([total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]])  # (3, n)
        lengths = np.stack([steps[i - 1, j - 1], steps[i - 1, j], steps[i, j - 1]])
        best = np.argmin(candidates, axis=0)  # ties: the diagonal step first
        pick = np.arange(len(i))
        total[i, j] = cost[i - 1, j - 1] + candidates[best, pick]
        steps[i, j] = lengths[best, pick] + 1
        moves[i, j] = best
    return total, steps, moves


def mel_distance(wav_a: np.ndarray, wav_b: np.ndarray, sample_rate: int, config: MelConfig | None = None) -> float:
    """Mean absolute log-mel difference of two waveforms after DTW alignment (see module docstring).

    Args:
        wav_a, wav_b: (T_a,), (T_b,) mono audio at `sample_rate`.
        sample_rate: Hz of both.
        config: the mel analysis; default `analysis_config(sample_rate)`.

    Returns:
        The distance (>= 0, natural-log units); nan when either input is shorter than one frame.
    """
    config = config or analysis_config(sample_rate)
    a, b = log_mel(wav_a, config), log_mel(wav_b, config)  # (T_a, M), (T_b, M)
    if not len(a) or not len(b):
        return float("nan")
    cost = cdist(a, b, metric="cityblock") / a.shape[1]  # (T_a, T_b)
    total, length = dtw(cost)
    return total / length
