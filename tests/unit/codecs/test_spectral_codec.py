"""SpectralCodec: fit -> encode -> decode on synthetic harmonic audio, save/load, determinism."""

import json

import pytest
import torch

from ttsframe.codecs import build_codec
from ttsframe.codecs.base import FittableCodec, encode_utterances
from ttsframe.codecs.spectral import Config, SpectralCodec
from ttsframe.errors import ConfigError, UserError

TINY = dict(n_codebooks=4, codebook_size=32, kmeans_iters=5, fit_max_frames=600, griffin_lim_iters=2,
            device="cpu")


@pytest.fixture(scope="module")
def fitted(utterances):
    codec = SpectralCodec(Config(**TINY))
    report = codec.fit(utterances[:10])
    return codec, report


def test_fit_report_and_error_falls_with_k(fitted, utterances):
    codec, report = fitted
    assert isinstance(codec, FittableCodec) and codec.needs_fit and codec.is_fitted
    assert report["utterances"] == 10 and report["kmeans_frames"] == 600 < report["frames"]
    train_l1 = report["logmel_l1_per_k"]
    assert len(train_l1) == 4 and all(a > b for a, b in zip(train_l1, train_l1[1:]))
    # Held-out audio: the decoded log-mel gets closer with each codebook.
    wav = torch.from_numpy(utterances[11])[None]
    mel = codec.features(wav)
    codes = codec.encode(wav)
    errors = [(codec.decode_mel(codes[:, :k]) - mel).abs().mean().item() for k in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.85 * errors[0]


def test_codes_shape_range_and_decode(fitted, utterances):
    codec, _ = fitted
    a, b = utterances[10], utterances[11]
    batch = torch.zeros(2, max(len(a), len(b)))
    batch[0, : len(a)], batch[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
    codes = codec.encode(batch, torch.tensor([len(a), len(b)]))
    assert codes.shape == (2, 4, codec.frames_for(batch.shape[-1])) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 32
    # Padding does not change the shorter item's codes (items are padded at their own ends).
    for i, wav in enumerate((a, b)):
        single = codec.encode(torch.from_numpy(wav)[None])[0]
        assert single.shape[-1] == codec.frames_for(len(wav))
        assert torch.equal(codes[i, :, : single.shape[-1]], single)
    wav = codec.decode(codes[:, :2])
    assert wav.shape == (2, codes.shape[-1] * 256) and torch.isfinite(wav).all()


def test_encode_utterances_trims_each_item(fitted, utterances):
    codec, _ = fitted
    wavs = utterances[:5]
    out = encode_utterances(codec, wavs, batch_seconds=2.5)  # forces several batches
    for wav, codes in zip(wavs, out):
        assert codes.shape == (4, codec.frames_for(len(wav)))
        assert torch.equal(codes, codec.encode(torch.from_numpy(wav)[None])[0].cpu())


def test_deterministic_with_seed(fitted, utterances):
    codec, _ = fitted
    again = SpectralCodec(Config(**TINY))
    again.fit(utterances[:10])
    assert torch.equal(again.codebooks, codec.codebooks)
    other = SpectralCodec(Config(**{**TINY, "seed": 1}))
    other.fit(utterances[:10])
    assert not torch.equal(other.codebooks, codec.codebooks)


def test_save_load_round_trip(fitted, utterances, tmp_path):
    from safetensors import safe_open

    codec, report = fitted
    path = tmp_path / "shards" / "codec.safetensors"
    codec.save(path)
    with safe_open(str(path), framework="pt") as f:  # plain safetensors + JSON, no pickle
        meta = json.loads(f.metadata()["ttsframe"])
    assert meta["n_codebooks"] == 4 and meta["mel"]["hop_length"] == 256 and meta["fit"] == report
    loaded = build_codec({"name": "spectral", **TINY}).load(path)
    wav = torch.from_numpy(utterances[3])[None]
    assert torch.equal(loaded.encode(wav), codec.encode(wav))
    with pytest.raises(ConfigError, match="codebook_size=32, the config says 64"):
        SpectralCodec(Config(**{**TINY, "codebook_size": 64})).load(path)
    with pytest.raises(ConfigError, match="hop_length: 256 vs 200"):
        SpectralCodec(Config(**TINY, mel={"hop_length": 200, "win_length": 800})).load(path)


def test_unfitted_and_too_little_audio(utterances):
    codec = SpectralCodec(Config(**TINY))
    with pytest.raises(UserError, match="not fitted"):
        codec.encode(torch.zeros(1, 1000))
    with pytest.raises(UserError, match="fewer than codebook_size=32"):
        codec.fit([utterances[0][:2000]])
    with pytest.raises(UserError, match="not found"):
        codec.load("/nonexistent/codec.safetensors")
