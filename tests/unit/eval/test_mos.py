"""MOS predictors: DNSMOS rates clean espeak speech above the same speech in loud noise; UTMOS
loads through torch.hub from a local repo folder and says what to provide when it cannot."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import soundfile as sf

from data_prep import builtin, builtin_synth
from data_prep.builtin_synth import Job
from data_prep.builtin_text import sentences
from ttsframe.errors import ConfigError, UserError
from ttsframe.data.audio import clips_at_rate
from ttsframe.eval.mos import MOS_RATE, MOS_PREDICTORS, MetricUnavailable, build_mos_predictor

RATE = 22050  # not the predictors' 16 kHz, so the resampling is exercised too


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> np.ndarray:
    """Two espeak sentences (American male 3) then silence up to 5.0 s, at 22.05 kHz.

    DNSMOS doubles a 5 s clip once to 10 s: a single 9.01 s window, so a single model run.
    """
    folder = tmp_path_factory.mktemp("speech")
    voice = next(v for v in builtin.TRAIN_VOICES if v.name == "en-us-m3")
    short = [text for text in sentences(100, seed=0) if len(text.split()) <= 6][:2]
    jobs = [Job(voice, text, str(folder / f"{i}.wav"), RATE) for i, text in enumerate(short)]
    builtin_synth.synthesize(jobs, num_workers=1)
    speech = np.concatenate([sf.read(job.path, dtype="float32")[0] for job in jobs])  # ~4.4 s
    assert len(speech) <= 5 * RATE
    return np.pad(speech, (0, 5 * RATE - len(speech)))


def test_dnsmos_rates_clean_speech_above_noisy_speech(clean):
    noise = 0.3 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)  # ~-10 dB SNR
    dnsmos = build_mos_predictor("dnsmos")
    scores = dnsmos.score([clean, clean + noise], RATE)  # the noisy clip exceeds [-1, 1]: clipped
    assert [set(s) for s in scores] == [{"sig", "bak", "ovrl", "p808"}] * 2
    assert all(1.0 <= v <= 5.0 for s in scores for v in s.values())
    # Measured (speechmos 0.0.1.1): clean ovrl 3.15 sig 3.40 bak 3.98 p808 3.37;
    # noisy ovrl 1.29 sig 1.79 bak 1.32 p808 2.16.
    clean_scores, noisy_scores = scores
    assert clean_scores["ovrl"] > noisy_scores["ovrl"] + 1.0
    assert clean_scores["bak"] > noisy_scores["bak"] + 1.5
    assert clean_scores["p808"] > noisy_scores["p808"] + 0.5
    assert dnsmos.score([clean], RATE) == [clean_scores]  # deterministic
    assert dnsmos.describe()["predictor"] == "dnsmos"


def test_dnsmos_empty_clip_is_nan():
    scores = build_mos_predictor("dnsmos").score([np.zeros(0, np.float32)], RATE)
    assert set(scores[0]) == {"sig", "bak", "ovrl", "p808"} and all(math.isnan(v) for v in scores[0].values())


FAKE_MODEL = '''
import torch


class LoudnessMOS(torch.nn.Module):
    """Stands in for UTMOS22: (B, T) audio at 16 kHz -> (B,) = 1 + 4 * mean |x|."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(4.0))

    def forward(self, wave, sr):
        assert sr == 16000 and wave.dim() == 2
        return 1.0 + self.scale * wave.abs().mean(dim=1)
'''

FAKE_HUBCONF = '''
import urllib.error

from speechmos.fake_utmos import LoudnessMOS  # like the real clone: its own package `speechmos`

dependencies = ["torch"]


def utmos22_strong(**kwargs):
    return LoudnessMOS()


def weights_not_cached(**kwargs):
    raise urllib.error.URLError("no network")
'''


def fake_speechmos_clone(folder):
    """A folder laid out like a tarepan/SpeechMOS clone, with a tiny deterministic model."""
    (folder / "speechmos").mkdir(parents=True)
    (folder / "speechmos" / "__init__.py").write_text("")
    (folder / "speechmos" / "fake_utmos.py").write_text(FAKE_MODEL)
    (folder / "hubconf.py").write_text(FAKE_HUBCONF)
    return str(folder)


def test_utmos_loads_a_local_hub_repo(tmp_path):
    import speechmos.dnsmos  # the DNSMOS wheel has the same top-level name as the clone's package

    wheel = sys.modules["speechmos"]
    utmos = build_mos_predictor("utmos", repo_dir=fake_speechmos_clone(tmp_path), device="cpu")
    assert sys.modules["speechmos"] is wheel and sys.modules["speechmos.dnsmos"] is speechmos.dnsmos
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(8000).astype(np.float32), 0.3 * rng.standard_normal(12000).astype(np.float32),
             np.zeros(0, np.float32)]
    scores = utmos.score(clips, 8000)
    expected = [1.0 + 4.0 * np.abs(wav).mean() for wav in clips_at_rate(clips[:2], 8000, MOS_RATE)]
    assert [set(s) for s in scores] == [{"utmos"}] * 3
    assert [s["utmos"] for s in scores[:2]] == pytest.approx(expected, rel=1e-5)
    assert math.isnan(scores[2]["utmos"])
    assert utmos.describe() == {"predictor": "utmos", "model": "utmos22_strong", "source": str(tmp_path),
                                "device": "cpu", "sample_rate": 16000}


def test_utmos_says_what_to_provide(tmp_path):
    for repo_dir in (None, str(tmp_path / "missing")):
        with pytest.raises(MetricUnavailable, match="eval.utmos_repo.*tarepan/SpeechMOS"):
            build_mos_predictor("utmos", repo_dir=repo_dir)
    repo_dir = fake_speechmos_clone(tmp_path / "clone")
    with pytest.raises(MetricUnavailable, match="no network"):
        build_mos_predictor("utmos", repo_dir=repo_dir, entry="weights_not_cached")
    with pytest.raises(MetricUnavailable, match="no_such_entry"):
        build_mos_predictor("utmos", repo_dir=repo_dir, entry="no_such_entry")
    assert issubclass(MetricUnavailable, UserError)


def test_unknown_predictor_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="dnsmos, utmos"):
        build_mos_predictor("nisqa")
    assert set(MOS_PREDICTORS) == {"dnsmos", "utmos"}
