"""s3_onnx: toy ONNX models with the signature of CosyVoice's speech_tokenizer_v1/v2.onnx (feats
(1, 128, T) + feats_length (1,) int32 -> ids) run through S3OnnxTokenizer: shapes equal frames_for,
ids are deterministic and a padded batch matches each clip alone; a missing file and a wrong
frame_rate are refused.

The toy models are written as ONNX protobuf by hand (tests/py): torch.onnx.export needs
the `onnx` package, which the project does not install.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the s3_onnx tokenizer runs on onnxruntime, not installed")

from onnx_writer import toy_s3_model  # noqa: E402
from ttsframe.errors import UserError  # noqa: E402
from ttsframe.tokenizers import SpeechTokenizer  # noqa: E402
from ttsframe.tokenizers.s3_onnx import S3OnnxTokenizer  # noqa: E402

CODES = 16  # the toy models' ids are in [0, 16)


# ---- tests --------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def private_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTSFRAME_CACHE", str(tmp_path / "cache"))


@pytest.fixture(params=[(25.0, 4, False), (50.0, 2, True)], ids=["v2-25Hz", "v1-50Hz"])
def tokenizer(request, tmp_path):
    frame_rate, subsample, keep_dims = request.param
    toy_s3_model(tmp_path / "toy.onnx", subsample, keep_dims)
    return S3OnnxTokenizer(tmp_path / "toy.onnx", frame_rate=frame_rate, vocab_size=CODES, device="cpu")


def speech_like(seconds: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 16000)) / 16000
    tone = torch.sin(2 * torch.pi * (200 + 300 * torch.rand(1, generator=gen)) * t * (1 + t))
    return (0.3 * tone + 0.05 * torch.randn(len(t), generator=gen)).float()


def test_shapes_follow_frames_for(tokenizer):
    assert isinstance(tokenizer, SpeechTokenizer) and tokenizer.sample_rate == 16000
    s = tokenizer.subsample
    assert [tokenizer.frames_for(n) for n in (0, 159, 160, 160 * s, 160 * s + 160)] == [0, 0, 1, 1, 2]
    for n in (159, 160, 4321, 16000, 16000 * 31 + 77):  # over 30 s: two windows
        ids = tokenizer.encode(speech_like(n / 16000, seed=n)[None])
        assert ids.dtype == torch.long and ids.shape == (1, tokenizer.frames_for(n))
        assert ids.numel() == 0 or (0 <= ids.min() and ids.max() < CODES)


def test_same_clip_same_ids_and_padded_batch(tokenizer):
    wavs = [speech_like(1.3, seed=1), speech_like(0.7, seed=2)]
    alone = [tokenizer.encode(w[None])[0] for w in wavs]
    assert torch.equal(tokenizer.encode(wavs[0][None])[0], alone[0]) and alone[0].unique().numel() > 1
    batch = torch.zeros(2, 16000 * 2)
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    ids = tokenizer.encode(batch, torch.tensor([len(w) for w in wavs]))
    assert ids.shape == (2, tokenizer.frames_for(batch.shape[1]))
    for row, one in zip(ids, alone):
        assert torch.equal(row[: len(one)], one) and not row[len(one):].any()


def test_describe(tokenizer, tmp_path):
    import hashlib

    assert tokenizer.describe() == {
        "name": "s3_onnx", "path": str((tmp_path / "toy.onnx").resolve()), "frame_rate": tokenizer.frame_rate,
        "vocab_size": CODES, "sha256": hashlib.sha256((tmp_path / "toy.onnx").read_bytes()).hexdigest()}


def test_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(UserError, match=r"speech_tokenizer_v2\.onnx.*tokenizer\.path="):
        S3OnnxTokenizer(tmp_path / "speech_tokenizer_v2.onnx")


def test_wrong_frame_rate_is_refused(tmp_path):
    toy_s3_model(tmp_path / "v1.onnx", subsample=2, keep_dims=True)  # a 50 Hz model read as 25 Hz
    tokenizer = S3OnnxTokenizer(tmp_path / "v1.onnx", frame_rate=25.0, vocab_size=CODES, device="cpu")
    with pytest.raises(UserError, match="frame_rate=25 .*v1 is 50 Hz"):
        tokenizer.encode(speech_like(1.0, seed=0)[None])
