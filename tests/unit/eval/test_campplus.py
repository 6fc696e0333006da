"""campplus: a toy ONNX model with the signature of CosyVoice's campplus.onnx (fbank (1, T, 80) ->
embedding (1, 192)) run through CamPlusPlusEncoder: the features are CosyVoice's (80-bin kaldi fbank
of 16 kHz audio, mean-normalised over time), rows are unit-norm, deterministic and NaN for clips
with nothing to embed; a missing file is refused and the registry builds the backend by name.

The toy model is written as ONNX protobuf (tests/onnx_writer.py): torch.onnx.export needs the
`onnx` package, which the project does not install.
"""

import math

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the campplus speaker backend runs on onnxruntime, not installed")

from onnx_writer import toy_campplus  # noqa: E402
from ttsframe.data.audio import resample  # noqa: E402
from ttsframe.errors import ConfigError, UserError  # noqa: E402
from ttsframe.eval.campplus import CamPlusPlusEncoder, fbank_features  # noqa: E402
from ttsframe.eval.speaker import SPEAKER_ENCODERS, build_speaker_encoder  # noqa: E402

RATE = 24000  # not the model's 16 kHz, so the clips also go through the resampling
DIM = 192


def voiced(seconds: float, f0: float, seed: int, rate: int = RATE) -> np.ndarray:
    """(T,) float32: a gliding harmonic tone at `f0` Hz with a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * math.pi * f0 * (t + 0.2 * t ** 2)
    wav = sum(np.sin(k * phase) / k for k in range(1, 12)) + 0.02 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.2 * wav / np.abs(wav).max()).astype(np.float32)


@pytest.fixture(autouse=True)
def private_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTSFRAME_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "campplus.onnx"
    return path, toy_campplus(path)


def test_rows_are_the_models_output_on_cosyvoice_features(model):
    path, weight = model
    encoder = CamPlusPlusEncoder(str(path), device="cpu")
    clips = [voiced(1.3, 120, seed=0), voiced(0.6, 210, seed=1), voiced(2.1, 160, seed=2)]
    emb = encoder.embed(clips, RATE)
    assert encoder.dim == DIM and emb.shape == (3, DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    for row, clip in zip(emb, clips):
        feats = fbank_features(resample(clip, RATE, 16000))  # (T, 80)
        expected = np.abs(feats).mean(0) @ weight
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), atol=1e-5)
    assert abs(float(emb[0] @ emb[1])) < 0.999  # different clips, different rows


def test_same_clip_same_row(model):
    encoder = CamPlusPlusEncoder(str(model[0]), device="cpu")
    clip, other = voiced(1.0, 140, seed=3), voiced(0.8, 190, seed=4)
    alone = encoder.embed([clip], RATE)
    together = encoder.embed([other, clip, clip.copy()], RATE)
    assert np.array_equal(alone[0], together[1]) and np.array_equal(together[1], together[2])
    assert np.array_equal(CamPlusPlusEncoder(str(model[0]), device="cpu").embed([clip], RATE), alone)


def test_nothing_to_embed_gives_nan_rows(model):
    encoder = CamPlusPlusEncoder(str(model[0]), device="cpu")
    too_short = voiced(0.02, 150, seed=5)  # 20 ms: under one 25 ms fbank window
    emb = encoder.embed([np.zeros(RATE, np.float32), np.zeros(0, np.float32), too_short, voiced(1.0, 150, seed=6)],
                        RATE)
    assert np.isnan(emb[:3]).all() and np.isfinite(emb[3]).all()
    assert encoder.embed([], RATE).shape == (0, DIM)


def test_fbank_features_follow_kaldi_framing_and_are_mean_normalised():
    rng = np.random.default_rng(0)
    n = 16000
    t = np.arange(n) / 16000
    wav = 0.01 * rng.standard_normal(n) + 0.3 * np.sin(2 * math.pi * 1000 * t) * (t >= 0.5)  # a 1 kHz tone from 0.5 s
    feats = fbank_features(wav.astype(np.float32))
    assert feats.shape == (1 + (n - 400) // 160, 80) and feats.dtype == np.float32  # 25 ms windows every 10 ms
    np.testing.assert_allclose(feats.mean(0), 0.0, atol=1e-4)
    mel = lambda f: 1127 * math.log(1 + f / 700)  # noqa: E731  (kaldi's mel scale, bins over 20 Hz - 8 kHz)
    centre_bin = round((mel(1000) - mel(20)) / ((mel(8000) - mel(20)) / 81)) - 1
    assert abs(int(np.argmax(feats[-10:].mean(0))) - centre_bin) <= 1  # the tone rises most in its own bin


def test_missing_model_says_where_to_put_it(tmp_path):
    for model in (None, str(tmp_path / "campplus.onnx")):
        with pytest.raises(UserError, match=r"campplus\.onnx.*eval\.speaker\.backend=campplus eval\.speaker\.model="):
            CamPlusPlusEncoder(model)


def test_devices(model):
    import onnxruntime

    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        CamPlusPlusEncoder(str(model[0]), device="tpu")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(UserError, match="no CUDA provider"):
            CamPlusPlusEncoder(str(model[0]), device="cuda:0")
        assert CamPlusPlusEncoder(str(model[0]), device="auto").device == "cpu"


def test_registry_builds_campplus(model):
    path = model[0]
    encoder = build_speaker_encoder("campplus", model=str(path), device="cpu")
    assert SPEAKER_ENCODERS["campplus"] is CamPlusPlusEncoder and isinstance(encoder, CamPlusPlusEncoder)
    info = encoder.describe()
    assert info["backend"] == "campplus" and info["source"] == str(path.resolve()) and info["device"] == "cpu"
    assert info["sample_rate"] == 16000 and len(info["sha256"]) == 64
