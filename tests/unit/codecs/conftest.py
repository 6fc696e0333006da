"""Synthetic audio for codec tests: harmonic 'voiced' tones with moving pitch and formant-like
amplitude changes, separated by pauses (cheap, deterministic, no corpus needed)."""

import math

import numpy as np
import pytest


def harmonic_utterance(seconds: float, seed: int, sample_rate: int = 22050) -> np.ndarray:
    """(T,) float32 in [-1, 1]: a voiced segment (f0 100-250 Hz with vibrato, 1/k harmonics shaped
    by a moving spectral tilt) with 0.1 s of silence at both ends."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * math.pi * rng.uniform(1, 4) * t))
    phase = 2 * math.pi * np.cumsum(f0) / sample_rate
    tilt = 1.0 + 0.8 * np.sin(2 * math.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 6))
    wav = sum(np.sin(k * phase) / k ** tilt for k in range(1, 25))
    envelope = np.clip(np.minimum(t - 0.1, seconds - 0.1 - t) * 20, 0, 1)
    wav = 0.3 * wav / np.abs(wav).max() * envelope + 1e-3 * rng.standard_normal(n)
    return wav.astype(np.float32)


@pytest.fixture(scope="session")
def utterances() -> list[np.ndarray]:
    """12 utterances, 0.6-1.5 s each, at 22050 Hz."""
    return [harmonic_utterance(0.6 + 0.08 * i, seed=i) for i in range(12)]


@pytest.fixture(scope="session")
def make_utterance():
    """harmonic_utterance(seconds, seed, sample_rate=22050) -> (T,) float32."""
    return harmonic_utterance
