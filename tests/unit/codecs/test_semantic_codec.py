"""SemanticCodec: codebook 1 is the speech tokenizer's tokens at the mel rate, the residual codebooks
bring the log-mel closer; save/load keeps the tokenizer; config errors name what to set."""

import pytest
import torch
from tiny_tokenizer import save_tiny_tokenizer

from ttsframe.codecs import build_codec
from ttsframe.codecs.base import FittableCodec
from ttsframe.codecs.semantic import Config, SemanticCodec, token_of_frame
from ttsframe.errors import ConfigError, UserError
from ttsframe.tokenizers.s3_asr.io import load_tokenizer

TINY = dict(n_codebooks=3, codebook_size=16, kmeans_iters=4, fit_max_frames=500, vocoder="griffin_lim",
            griffin_lim_iters=2, device="cpu")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return save_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def fitted(utterances, tokenizer_dir):
    codec = SemanticCodec(Config(tokenizer=str(tokenizer_dir), **TINY))
    return codec, codec.fit(utterances[:10])


def test_first_codebook_is_the_speech_tokens_at_the_mel_rate(fitted, utterances, tokenizer_dir):
    codec, report = fitted
    assert isinstance(codec, FittableCodec) and codec.is_fitted and codec.codebook_size == 16
    wav = torch.from_numpy(utterances[11])[None]
    codes = codec.encode(wav)
    assert codes.shape == (1, 3, codec.frames_for(wav.shape[-1])) and codes.dtype == torch.long
    tokenizer = load_tokenizer(tokenizer_dir)
    from ttsframe.data.audio import resample

    clip = torch.from_numpy(resample(utterances[11], codec.sample_rate, tokenizer.sample_rate))[None]
    tokens = tokenizer.encode(clip)[0]  # (T_tok,) at 25 Hz
    index = token_of_frame(codes.shape[-1], 256, 1024, codec.sample_rate, tokenizer.frame_rate, len(tokens))
    assert torch.equal(codes[0, 0], tokens[index])
    assert codes[0, 1:].max() < 16 and codes[0, 0].max() < tokenizer.vocab_size
    # The residual codebooks bring the decoded log-mel closer to the audio's, on the fit and held out.
    assert all(a > b for a, b in zip(report["logmel_l1_per_k"], report["logmel_l1_per_k"][1:]))
    mel = codec.features(wav)
    errors = [(codec.decode_mel(codes[:, :k]) - mel).abs().mean().item() for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2], errors
    assert codec.decode(codes).shape == (1, codes.shape[-1] * 256)


def test_frames_map_to_the_token_whose_span_holds_their_centre():
    # 25 Hz tokens, hop 256 / window 1024 at 22050 Hz: frame t's centre is (256 t + 512) / 22050 s.
    index = token_of_frame(10, 256, 1024, 22050, 25.0, 3)
    assert index.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]  # frame 5: 0.0813 s -> token 2; then clamped to 3 tokens


def test_padding_does_not_change_an_item_and_save_load_keeps_the_tokenizer(fitted, utterances, tmp_path):
    codec, _ = fitted
    a, b = utterances[10], utterances[11]
    batch = torch.zeros(2, max(len(a), len(b)))
    batch[0, : len(a)], batch[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
    codes = codec.encode(batch, torch.tensor([len(a), len(b)]))
    single = codec.encode(torch.from_numpy(a)[None])[0]
    assert torch.equal(codes[0, :, : single.shape[-1]], single)
    codec.save(tmp_path / "codec.safetensors")
    # No tokenizer folder needed to load: the file carries it.
    loaded = SemanticCodec(Config(tokenizer=None, **TINY)).load(tmp_path / "codec.safetensors")
    assert torch.equal(loaded.encode(torch.from_numpy(a)[None])[0], single)
    assert loaded.describe() == codec.describe()  # what the shards' index records matches after a load
    with pytest.raises(ConfigError, match="residual_codebook_size"):
        SemanticCodec(Config(**{**TINY, "codebook_size": 8})).load(tmp_path / "codec.safetensors")


def test_errors_name_what_to_do(utterances, tmp_path):
    with pytest.raises(ConfigError, match="codec.tokenizer"):
        SemanticCodec(Config(**TINY)).fit(utterances[:2])
    with pytest.raises(UserError, match="train_tokenizer"):
        SemanticCodec(Config(tokenizer=str(tmp_path), **TINY)).fit(utterances[:2])
    with pytest.raises(UserError, match="not fitted"):
        SemanticCodec(Config(**TINY)).encode(torch.zeros(1, 2205))
    assert isinstance(build_codec({"name": "semantic", "device": "cpu"}), SemanticCodec)
