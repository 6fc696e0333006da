"""S3-ASR front end, model shapes, token counts and padding invariance (tiny preset, random init)."""

import numpy as np
import pytest
import torch

from ttsframe.tokenizers.base import SpeechTokenizer
from ttsframe.tokenizers.s3_asr import S3AsrModel, S3AsrTokenizer, get_preset
from ttsframe.tokenizers.s3_asr.features import LogMel, log_mel
from ttsframe.tokenizers.s3_asr.model import mean_normalize

N_SYMBOLS = 12


def tiny_model(subsample: int, seed: int = 0) -> S3AsrModel:
    torch.manual_seed(seed)
    return S3AsrModel(get_preset("s3_asr_tiny", N_SYMBOLS, subsample)).eval()


def noise(n: int, seed: int) -> torch.Tensor:
    """(n,) at 16 kHz: tones whose pitch and loudness jump every 50 ms, over faint noise (frames
    that differ, so that even a random model gives several codes)."""
    rng = np.random.default_rng(seed)
    n_segments = -(-n // 800)
    freq = np.repeat(rng.uniform(100, 4000, n_segments), 800)[:n]
    amp = np.repeat(rng.uniform(0.0, 0.5, n_segments), 800)[:n]
    wav = amp * np.sin(2 * np.pi * np.cumsum(freq) / 16000) + 0.003 * rng.standard_normal(n)
    return torch.from_numpy(wav.astype(np.float32))


def test_features_equal_whisper_log_mel():
    from faster_whisper.feature_extractor import FeatureExtractor  # Whisper's recipe in numpy

    wav = noise(16000 + 77, seed=1).numpy()
    ours = LogMel()(torch.from_numpy(wav)[None])[0].numpy()  # (T, 80)
    np.testing.assert_allclose(ours.T, FeatureExtractor()(wav, padding=0), atol=1e-4)  # float32 FFTs
    assert ours.shape == (100, 80)


def test_features_of_a_padded_row_equal_the_row_alone_and_other_rates_are_resampled():
    a, b = noise(8000, seed=2), noise(12345, seed=3)
    batch = torch.zeros(2, 12345)
    batch[0, :8000], batch[1] = a, b
    out = LogMel()(batch, torch.tensor([8000, 12345]))  # (2, 77, 80)
    alone = LogMel()(a[None])[0]
    assert out.shape == (2, 77, 80)
    torch.testing.assert_close(out[0, :50], alone, rtol=0, atol=0)
    assert out[0, 50:].abs().max() == 0
    assert log_mel(noise(22050, seed=4).numpy(), 22050).shape == (100, 80)


@pytest.mark.parametrize("subsample", [2, 4])
def test_forward_shapes(subsample):
    model = tiny_model(subsample)
    mel, lengths = torch.randn(3, 101, 80), torch.tensor([101, 64, 7])
    out = model(mel, lengths)
    n_out = model.output_length(101)
    assert n_out == -(-101 // subsample)  # ceil
    assert out["logits"].shape == (3, n_out, N_SYMBOLS)
    assert out["indices"].shape == (3, n_out) and out["indices"].dtype == torch.long
    assert out["lengths"].tolist() == [model.output_length(n) for n in (101, 64, 7)]
    assert int(out["indices"].max()) < model.config.codebook_size
    assert torch.equal(model.tokenize(mel, lengths), out["indices"])
    assert model(mel, lengths, quantize=False)["logits"].shape == out["logits"].shape


@pytest.mark.parametrize("subsample", [2, 4])
def test_frames_for_is_exact_against_encode(subsample):
    tokenizer = S3AsrTokenizer(tiny_model(subsample))
    assert isinstance(tokenizer, SpeechTokenizer)
    assert tokenizer.frame_rate == 100 / subsample and tokenizer.vocab_size == 625
    for n in (159, 160, 161, 320, 481, 16000, 16160, 16321):
        assert tokenizer.encode(noise(n, seed=n)[None]).shape == (1, tokenizer.frames_for(n)), n


@pytest.mark.parametrize("subsample", [2, 4])
def test_padding_does_not_change_a_rows_tokens(subsample):
    tokenizer = S3AsrTokenizer(tiny_model(subsample, seed=5))
    sizes = [16000, 9000, 4321]
    rows = [noise(n, seed=10 + i) for i, n in enumerate(sizes)]
    batch = torch.zeros(len(rows), max(sizes))
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    ids = tokenizer.encode(batch, torch.tensor(sizes))
    for i, row in enumerate(rows):
        alone = tokenizer.encode(row[None])[0]
        n = tokenizer.frames_for(len(row))
        assert torch.equal(ids[i, :n], alone), i
        assert len(torch.unique(alone)) > n // 4, i  # non-trivial: many different codes


def test_padding_does_not_change_a_rows_logits():
    model = tiny_model(2, seed=6)
    mel = torch.randn(2, 90, 80)
    mel[1, 57:] = 3.0  # padding of any value
    out = model(mel, torch.tensor([90, 57]))
    alone = model(mel[1:, :57])
    n = model.output_length(57)
    torch.testing.assert_close(out["logits"][1, :n], alone["logits"][0], atol=1e-5, rtol=1e-5)
    assert torch.equal(out["indices"][1, n:], torch.zeros_like(out["indices"][1, n:]))


def test_mean_normalisation_ignores_a_per_band_offset_and_the_padding():
    model = tiny_model(4)
    assert model.config.cmn
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(2, 60, 80, generator=g)
    lengths = torch.tensor([60, 41])
    mel[1, 41:] = 0.0
    offset = torch.linspace(-1.0, 1.0, 80)  # a tilt: the same in every frame
    shifted = mel + offset * (torch.arange(60)[None, :, None] < lengths[:, None, None])
    assert torch.equal(model.tokenize(mel, lengths), model.tokenize(shifted, lengths))
    assert torch.equal(model.tokenize(mel[1:, :41])[0], model.tokenize(mel, lengths)[1, :model.output_length(41)])
    normalized = mean_normalize(mel, lengths)
    assert (normalized[1, 41:] == 0).all() and normalized[0].mean(0).abs().max() < 1e-5
