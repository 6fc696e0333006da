"""mel_distance: 0 for identical audio, small for the same content at another tempo, larger
for other content; and the DTW it is built on."""

import numpy as np
import pytest

from ttsframe.eval.mel_distance import analysis_config, dtw, mel_distance

RATE = 16000


def melody(notes: list[float], seconds: float, seed: int = 0) -> np.ndarray:
    """Tones of equal length (`seconds` each) with a little noise: speech-like spectral changes."""
    t = np.arange(int(seconds * RATE)) / RATE
    wav = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * 2.5 * f * t) for f in notes])
    return (wav + 0.003 * np.random.default_rng(seed).standard_normal(len(wav))).astype(np.float32)


NOTES = [220.0, 330.0, 262.0, 440.0, 196.0]


def test_identical_audio_is_zero():
    wav = melody(NOTES, 0.15)
    assert mel_distance(wav, wav.copy(), RATE) == 0.0


def test_time_stretched_copy_is_small_other_audio_larger():
    wav = melody(NOTES, 0.15)
    slower = melody(NOTES, 0.2, seed=1)  # same notes, 33 % slower, other noise
    other = melody([523.0, 150.0, 700.0, 370.0, 990.0], 0.15, seed=2)
    stretched, different = mel_distance(wav, slower, RATE), mel_distance(wav, other, RATE)
    assert 0 < stretched < 0.5 < different
    assert different > 2 * stretched
    assert mel_distance(slower, wav, RATE) == pytest.approx(stretched, rel=1e-9)  # symmetric


def test_dtw_path_cost_and_length():
    cost = np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    assert dtw(cost) == (0.0, 4)  # (0,0) (0,1) (1,2) (1,3)
    assert dtw(np.ones((1, 4))) == (4.0, 4)


def test_analysis_config_follows_the_rate_and_short_audio_is_nan():
    assert (analysis_config(22050).n_fft, analysis_config(22050).hop_length) == (1024, 256)
    assert analysis_config(8000).fmax == 4000.0 and analysis_config(8000).n_mels == 40
    assert np.isnan(mel_distance(np.zeros(10, np.float32), melody(NOTES, 0.1), RATE))
