"""Signal metrics against the ground truth, on known answers: espeak-ng speech from the built-in
corpus synthesiser (the same sentence slower, another sentence, another voice), pure tones,
added white noise and time shifts. Measured values are in the comments (16 kHz)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import soundfile as sf

from data_prep.builtin_synth import Job, Voice, synthesize
from ttsframe.data.audio import resample
from ttsframe.eval import signal_metrics as sm
from ttsframe.eval.mel_distance import analysis_config, dtw, dtw_path, log_mel

RATE = 16000
MALE = Voice("en-us-m3", "espeak", "en-us+m3", "espeak American male 3", pitch=45, rate=165)
MALE_SLOW = Voice("en-us-m3-slow", "espeak", "en-us+m3", "the same, slower", pitch=45, rate=110)
FEMALE = Voice("en-us-f3", "espeak", "en-us+f3", "espeak American female 3", pitch=55, rate=175)
FOX = "The quick brown fox jumps over the lazy dog near the river bank."
HARBOUR = "Seven bright lanterns were hanging above the quiet harbour tonight."
UTTERANCES = {"fox": (MALE, FOX), "fox_slow": (MALE_SLOW, FOX), "harbour": (MALE, HARBOUR), "fox_female": (FEMALE, FOX)}


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, np.ndarray]:
    """(T,) float32 at RATE per utterance: ~3.8 s, fox_slow ~5.5 s, with 0.1 s of silence at each end."""
    folder = tmp_path_factory.mktemp("espeak")
    synthesize([Job(voice, text, str(folder / f"{name}.wav"), RATE) for name, (voice, text) in UTTERANCES.items()],
               num_workers=1)
    return {name: sf.read(str(folder / f"{name}.wav"), dtype="float32")[0] for name in UTTERANCES}


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def with_noise(wav: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(wav))
    gain = math.sqrt(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return (wav + gain * noise).astype(np.float32)


def test_identical_audio_scores_perfectly(speech):
    fox = speech["fox"]
    scores = sm.signal_metrics(fox, fox.copy(), RATE, aligned=True)
    assert scores["mcd"] == 0.0 and scores["log_f0_rmse"] == 0.0 and scores["voicing_error"] == 0.0
    assert 4.5 < scores["pesq"] <= 4.65  # measured 4.644, the wide-band maximum
    assert scores["stoi"] > 0.999  # measured 1.0


def test_slower_same_sentence_is_close_other_sentence_or_voice_is_far(speech):
    fox = speech["fox"]
    slow, other_text, other_voice = (sm.signal_metrics(fox, speech[name], RATE, aligned=False)
                                     for name in ("fox_slow", "harbour", "fox_female"))
    assert set(slow) == {"mcd", "log_f0_rmse", "voicing_error"}
    # MCD measured: slower 1.22 dB, other sentence 5.51 dB, other voice 5.44 dB.
    assert slow["mcd"] < 2.5 < 4.0 < min(other_text["mcd"], other_voice["mcd"])
    # log-F0 RMSE measured: slower 0.015 (voicing error 0.02), other voice 0.80 (its pitch is higher).
    assert slow["log_f0_rmse"] < 0.05 and slow["voicing_error"] < 0.1
    assert other_voice["log_f0_rmse"] > 0.5
    # Another sentence in the same voice aligns speech with other phones: voicing error measured 0.25.
    assert other_text["voicing_error"] > 2 * slow["voicing_error"]


@pytest.mark.parametrize("samples, dtw_below", [(768, 0.05), (700, 1.0)])
def test_mcd_with_dtw_ignores_a_time_shift_a_frame_by_frame_comparison_does_not(speech, samples, dtw_below):
    """Measured: 3 hops later (768 samples) 0.0 dB with DTW, 5.5 frame by frame; 700 samples
    0.73 and 5.2 (frames then sample the speech at another phase: half a hop costs ~1.2 dB)."""
    fox = speech["fox"]
    shifted = np.concatenate([np.zeros(samples, np.float32), fox])[:len(fox)]
    config = analysis_config(RATE)
    a, b = (sm.mel_cepstra(log_mel(wav, config)) for wav in (fox, shifted))  # (T, 24) each, same T
    assert float(np.diag(sm.distortion_matrix(a, b)).mean()) > 4.0
    assert sm.mcd(fox, shifted, RATE, trim_silence=False) < dtw_below
    assert sm.mcd(fox, shifted, RATE) < dtw_below


def test_mcd_leaves_out_loudness(speech):
    """c_0 is excluded: a 6 dB quieter copy is (nearly) the same spectrum; only the log floor differs."""
    assert sm.mcd(speech["fox"], 0.5 * speech["fox"], RATE) < 0.01  # measured 0.0008


def test_cepstral_scale_gives_the_rms_log_amplitude_difference():
    """With every cepstrum kept, sqrt(2 sum_d (c_d - c'_d)^2) is the RMS over mel bands of the
    mean-removed log-amplitude difference (the convention of the MCD formula)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 80)), rng.normal(size=(3, 80))  # (T, M) log-mel frames
    difference = (a - b) - (a - b).mean(axis=1, keepdims=True)
    expected = np.sqrt(np.mean(difference ** 2, axis=1))
    got = np.diag(sm.distortion_matrix(sm.mel_cepstra(a, 79), sm.mel_cepstra(b, 79))) / (10 / math.log(10))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_tones_200_and_220_hz_differ_by_their_log_f0_ratio():
    scores = sm.log_f0_rmse(tone(200.0), tone(220.0), RATE)
    assert scores["log_f0_rmse"] == pytest.approx(math.log(220 / 200), abs=0.01)  # measured 0.0936 vs 0.0953
    assert scores["voicing_error"] == 0.0 and scores["voiced_frames"] >= 55  # measured 62 (1 s, 16 ms hop)


def test_noise_lowers_pesq_and_stoi(speech):
    fox = speech["fox"]
    clean, noisy = with_noise(fox, 30.0), with_noise(fox, 0.0)
    # Measured: PESQ 2.14 at 30 dB SNR, 1.02 at 0 dB; STOI 0.999 and 0.84; extended STOI 0.997 and 0.54.
    assert sm.pesq_score(fox, noisy, RATE) + 0.7 < sm.pesq_score(fox, clean, RATE)
    assert sm.stoi_score(fox, noisy, RATE) + 0.1 < sm.stoi_score(fox, clean, RATE)
    assert sm.stoi_score(fox, noisy, RATE, extended=True) + 0.3 < sm.stoi_score(fox, clean, RATE, extended=True)


def test_other_rates_are_resampled_and_lengths_matched(speech):
    fox = resample(speech["fox"], RATE, 22050)
    longer = np.concatenate([fox, np.zeros(500, np.float32)])  # cut back to the reference's length
    scores = sm.signal_metrics(fox, longer, 22050, aligned=True)
    assert scores["mcd"] == 0.0 and scores["pesq"] > 4.5 and scores["stoi"] > 0.999
    assert sm.stoi_score(fox, fox[:-500], 22050) > 0.99  # zero-padded to the reference's length


def test_what_cannot_be_scored_is_nan_and_pesq_says_why_once(monkeypatch, caplog):
    monkeypatch.setattr(sm, "_logged", set())
    short = tone(200.0, 0.1)
    with caplog.at_level(logging.WARNING, logger=sm.__name__):
        assert math.isnan(sm.pesq_score(short, short, RATE))  # under 0.25 s
        assert math.isnan(sm.pesq_score(short, short, RATE))
    assert len(caplog.records) == 1 and "BufferTooShortError" in caplog.text
    assert math.isnan(sm.pesq_score(tone(200.0), np.zeros(RATE, np.float32), RATE))  # silent degraded
    assert math.isnan(sm.stoi_score(short, short, RATE))  # pystoi: too few frames
    assert math.isnan(sm.mcd(np.zeros(10, np.float32), tone(200.0), RATE))  # under one frame
    noise = (0.1 * np.random.default_rng(1).standard_normal(RATE)).astype(np.float32)
    unvoiced = sm.log_f0_rmse(tone(200.0), noise, RATE)
    assert math.isnan(unvoiced["log_f0_rmse"]) and unvoiced["voiced_frames"] < sm.MIN_VOICED_FRAMES


@pytest.mark.parametrize("bad, message", [
    (np.zeros(0, np.float32), "empty"),
    (np.zeros((2, 100), np.float32), "shape"),
    (np.array([0.1, np.nan, 0.2] * 100, np.float32), "NaN"),
])
def test_bad_input_names_the_argument(bad, message):
    good = tone(200.0, 0.2)
    with pytest.raises(ValueError, match=f"synthesis: .*{message}"):
        sm.mcd(good, bad, RATE)
    with pytest.raises(ValueError, match=f"reference: .*{message}"):
        sm.signal_metrics(bad, good, RATE, aligned=True)
    with pytest.raises(ValueError, match=f"degraded: .*{message}"):
        sm.pesq_score(good, bad, RATE)


def test_dtw_path_is_the_path_dtw_scores():
    cost = np.random.default_rng(0).random((7, 11))
    path = dtw_path(cost)  # (L, 2)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (6, 10)
    assert set(map(tuple, np.diff(path, axis=0))) <= {(0, 1), (1, 0), (1, 1)}
    total, length = dtw(cost)
    assert len(path) == length and cost[path[:, 0], path[:, 1]].sum() == pytest.approx(total, rel=1e-12)
