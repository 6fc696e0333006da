"""Griffin-Lim: spectrum of a sine, alignment with the mel frames, determinism, registry."""

import math

import pytest
import torch
import torch.nn.functional as F

from ttsframe.codecs.mel import MelConfig, MelSpectrogram
from ttsframe.errors import ConfigError
from ttsframe.vocoders import VOCODERS, Vocoder, build_vocoder

SR = 22050


def tone_burst(n: int = SR // 2, start: int = 3000, stop: int = 7000, hz: float = 440.0) -> torch.Tensor:
    t = torch.arange(n) / SR
    on = (torch.arange(n) >= start) & (torch.arange(n) < stop)
    return (0.5 * torch.sin(2 * math.pi * hz * t) * on)[None]  # (1, n)


@pytest.fixture(scope="module")
def setup():
    cfg = MelConfig()
    return cfg, MelSpectrogram(cfg), build_vocoder("griffin_lim", cfg, n_iter=32)


def test_sine_spectrum_and_length(setup):
    cfg, mel_fn, gl = setup
    x = 0.5 * torch.sin(2 * math.pi * 440 * torch.arange(SR // 2) / SR)[None]
    mel = mel_fn(x)
    y = gl(mel)
    assert isinstance(gl, Vocoder) and y.shape == (1, mel.shape[-1] * cfg.hop_length)
    spectrum = torch.fft.rfft(y[0] * torch.hann_window(y.shape[-1])).abs()
    assert abs(spectrum.argmax().item() * SR / y.shape[-1] - 440) < 10
    # Away from the edges the log-mel of the output is close to the input's.
    err = (mel_fn(y) - mel[..., : mel_fn(y).shape[-1]])[..., 4:-4]
    assert err.abs().mean() < 0.15
    rms = y[0, 1000:-1000].pow(2).mean().sqrt()
    assert 0.8 < rms / (0.5 / math.sqrt(2)) < 1.25  # the level is kept


def test_output_aligned_with_input(setup):
    """Frame t of MelSpectrogram is centred on t * hop + hop / 2; the vocoder undoes that shift."""
    _, mel_fn, gl = setup
    x = tone_burst()
    y = gl(mel_fn(x))[0]
    envelope = lambda s: F.avg_pool1d(s.abs()[None, None], 101, 1, 50)[0, 0]  # noqa: E731
    ex, ey = envelope(x[0, : y.shape[-1]]), envelope(y)
    lags = list(range(-256, 257, 8))
    best = lags[int(torch.tensor([float((ex * torch.roll(ey, -lag)).sum()) for lag in lags]).argmax())]
    assert abs(best) <= 32


def test_magnitude_inverts_the_filterbank(setup):
    cfg, mel_fn, gl = setup
    mel = mel_fn(tone_burst(start=0, stop=SR))
    mag = gl.magnitude(mel)
    assert mag.shape == (1, cfg.n_fft // 2 + 1, mel.shape[-1]) and torch.all(mag >= 0)
    rebuilt = torch.log(torch.clamp(gl.mel_basis @ mag, min=cfg.log_floor))
    assert (rebuilt - mel).abs().mean() < 0.05


def test_deterministic_and_batched(setup):
    cfg, mel_fn, _ = setup
    gl = build_vocoder("griffin_lim", cfg, n_iter=4, seed=7)
    mel = mel_fn(torch.cat([tone_burst(), tone_burst(hz=220.0)]))
    a, b = gl(mel), gl(mel)
    assert a.shape == (2, mel.shape[-1] * cfg.hop_length)
    torch.testing.assert_close(a, b)


def test_registry_and_input_checks(setup):
    cfg, _, gl = setup
    assert "griffin_lim" in VOCODERS
    with pytest.raises(ConfigError, match="unknown vocoder `hifi`; valid vocoders: griffin_lim, hifigan"):
        build_vocoder("hifi", cfg)
    with pytest.raises(ValueError, match="expected log-mel"):
        gl(torch.zeros(1, 64, 10))
    assert build_vocoder("griffin_lim", cfg.to_dict(), n_iter=1).mel_config == cfg
    assert gl(torch.zeros(1, 80, 1)).shape == (1, 256)
