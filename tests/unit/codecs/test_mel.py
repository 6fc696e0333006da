"""MelSpectrogram against a direct numpy + librosa computation; frame counts; batching."""

import math

import numpy as np
import pytest
import torch

from ttsframe.codecs.mel import MelConfig, MelSpectrogram, check_mel_compatible, mel_filterbank
from ttsframe.codecs.mel_codec import MelCodec
from ttsframe.errors import ConfigError


def reference_logmel(wav: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """The universal HiFi-GAN recipe written out in numpy: (n_mels, T)."""
    import librosa

    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = np.pad(wav.astype(np.float64), (pad, pad), mode="reflect")
    n = 1 + (len(x) - cfg.n_fft) // cfg.hop_length
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.win_length) / cfg.win_length)  # periodic hann
    frames = np.stack([x[i * cfg.hop_length: i * cfg.hop_length + cfg.n_fft] * window for i in range(n)])
    spec = np.fft.rfft(frames, axis=1).T  # (F, T)
    mag = np.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                                fmin=cfg.fmin, fmax=cfg.fmax)
    return np.log(np.maximum(basis @ mag, cfg.log_floor))


def test_filterbank_equals_librosa_slaney():
    import librosa

    for cfg in (MelConfig(), MelConfig(sample_rate=24000, n_fft=1024, n_mels=100, fmin=50, fmax=None)):
        ours = mel_filterbank(cfg)
        theirs = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                                     fmin=cfg.fmin, fmax=cfg.fmax)
        np.testing.assert_allclose(ours, theirs, atol=1e-7)


def test_logmel_matches_reference(make_utterance):
    cfg = MelConfig()
    wav = make_utterance(0.5, seed=3)
    ours = MelSpectrogram(cfg)(torch.from_numpy(wav)[None])[0].numpy()
    ref = reference_logmel(wav, cfg)
    assert ours.shape == ref.shape == (80, len(wav) // 256)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("center", [False, True])
def test_frames_for_is_exact(center):
    cfg = MelConfig(center=center)
    mel = MelSpectrogram(cfg)
    for n in (0, 100, 255, 256, 300, 384, 385, 511, 512, 1000, 22050, 22051):
        out = mel(torch.randn(2, n) * 0.1)
        assert out.shape == (2, 80, cfg.frames_for(n)), n
    assert cfg.frames_for(22050) == 22050 // 256 if not center else 1 + 22050 // 256


def test_batch_with_lengths_equals_single(make_utterance):
    mel = MelSpectrogram(MelConfig())
    a, b = make_utterance(0.8, seed=1), make_utterance(0.5, seed=2)
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
    out = mel(batch, torch.tensor([len(a), len(b)]))
    single = mel(torch.from_numpy(b)[None])[0]
    n = single.shape[-1]
    torch.testing.assert_close(out[1, :, :n], single, atol=1e-4, rtol=1e-4)
    assert torch.all(out[1, :, n:] == math.log(1e-5))
    torch.testing.assert_close(out[0], mel(torch.from_numpy(a)[None])[0], atol=1e-4, rtol=1e-4)


def test_check_mel_compatible():
    check_mel_compatible(MelConfig(), MelConfig().to_dict(), "same")
    with pytest.raises(ConfigError, match=r"vocoder vs data.*hop_length: 256 vs 200.*n_mels: 80 vs 100"):
        check_mel_compatible(MelConfig(), MelConfig(hop_length=200, n_mels=100), "vocoder vs data")
    with pytest.raises(ConfigError, match="fmax"):
        check_mel_compatible(MelConfig(), {"fmax": None}, "x")
    with pytest.raises(ConfigError, match="unknown key"):
        check_mel_compatible(MelConfig(), {"hop": 3}, "x")


def test_mel_codec_encode_decode_shapes(make_utterance):
    from ttsframe.codecs.mel_codec import Config

    codec = MelCodec(Config(griffin_lim_iters=2, device="cpu"))
    assert (codec.n_codebooks, codec.codebook_size, codec.needs_fit) == (0, 0, False)
    wav = torch.from_numpy(make_utterance(0.4, seed=0))[None]
    frames = codec.encode(wav)
    assert frames.shape == (1, 80, codec.frames_for(wav.shape[-1]))
    assert codec.decode(frames).shape == (1, frames.shape[-1] * 256)
    assert codec.describe()["mel"]["hop_length"] == 256
