"""Speaker similarity: resemblyzer tells espeak voices apart on real synthesised speech; the
WavLM x-vector backend loads a tiny save_pretrained model by path and refuses uncached hub ids."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep import builtin, builtin_synth
from data_prep.builtin_synth import Job
from data_prep.builtin_text import sentences
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.speaker import SPEAKER_ENCODERS, build_speaker_encoder, cosine_similarity

RATE = 24000  # not the encoders' 16 kHz, so every test also goes through the resampling
VOICES = ["en-us-m7", "en-us-f3", "en-rp-f5"]  # espeak American male 7, American female 3, British RP female 5


def speak(folder, voice_names: list[str], texts: list[str], rate: int) -> dict[str, list[np.ndarray]]:
    """Synthesises every text with every voice of the built-in corpus: {voice: [wav (T,), ...]}."""
    voices = {v.name: v for v in builtin.TRAIN_VOICES + builtin.TEST_VOICES}
    jobs = [Job(voices[name], text, str(folder / f"{name}-{i}.wav"), rate)
            for name in voice_names for i, text in enumerate(texts)]
    builtin_synth.synthesize(jobs, num_workers=1)
    return {name: [sf.read(str(folder / f"{name}-{i}.wav"), dtype="float32")[0] for i in range(len(texts))]
            for name in voice_names}


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, list[np.ndarray]]:
    """3 voices x 3 sentences (~2-3 s each) at 24 kHz."""
    return speak(tmp_path_factory.mktemp("speech"), VOICES, sentences(3, seed=0), RATE)


@pytest.fixture(scope="module")
def resemblyzer():
    return build_speaker_encoder("resemblyzer", device="cpu")


def test_batched_partials_match_resemblyzers_own_embed_utterance(speech, resemblyzer):
    from ttsframe.data.audio import clips_at_rate
    from ttsframe.eval import speaker

    clips = [wav for voice in VOICES for wav in speech[voice]]
    clips.append(np.concatenate(clips[:4]))  # one long clip: more partial windows than the others
    own = np.stack([resemblyzer.encoder.embed_utterance(resemblyzer._resemblyzer.preprocess_wav(w))
                    for w in clips_at_rate(clips, RATE, speaker.ENCODER_RATE)])
    np.testing.assert_allclose(resemblyzer.embed(clips, RATE), own, atol=1e-5)
    small = speaker.PARTIALS_PER_BATCH
    try:
        speaker.PARTIALS_PER_BATCH = 3  # windows of one clip split over LSTM calls: the same rows
        np.testing.assert_allclose(resemblyzer.embed(clips, RATE), own, atol=1e-5)
    finally:
        speaker.PARTIALS_PER_BATCH = small


def test_identical_audio_is_one_and_rows_are_unit_norm(speech, resemblyzer):
    wav = speech["en-us-f3"][0]
    emb = resemblyzer.embed([wav, wav.copy()], RATE)
    assert emb.shape == (2, 256) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert cosine_similarity(emb[:1], emb[1:])[0] > 0.999


def test_same_voice_is_more_similar_than_other_voices(speech, resemblyzer):
    clips = [wav for name in VOICES for wav in speech[name]]  # 9 clips of different lengths, one batch
    assert len({len(c) for c in clips}) > 1
    emb = resemblyzer.embed(clips, RATE)  # (9, 256)
    assert emb.shape == (9, 256)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    owner = np.repeat(np.arange(len(VOICES)), 3)

    def mean_sim(a: int, b: int) -> float:
        pairs = (owner[:, None] == a) & (owner[None, :] == b) & ~np.eye(len(clips), dtype=bool)
        return float(sim[pairs].mean())

    # Measured (resemblyzer 0.1.4, CPU), mean over other-sentence pairs: same voice 0.89 (m7),
    # 0.88 (f3), 0.88 (f5); across voices m7-f3 0.54, m7-f5 0.58, f3-f5 0.69. Single pairs: every
    # same-voice pair >= 0.86, every cross-voice pair <= 0.80.
    for a in range(len(VOICES)):
        for b in range(len(VOICES)):
            if a != b:
                assert mean_sim(a, a) > mean_sim(a, b) + 0.1, (VOICES[a], VOICES[b])
    same = sim[(owner[:, None] == owner[None, :]) & ~np.eye(len(clips), dtype=bool)]
    assert same.min() > 0.75


def test_silent_or_empty_clip_gives_nan_row(speech, resemblyzer):
    emb = resemblyzer.embed([np.zeros(RATE, np.float32), np.zeros(0, np.float32), speech["en-us-m7"][0]], RATE)
    assert np.isnan(emb[:2]).all() and np.isfinite(emb[2]).all()
    assert np.isnan(cosine_similarity(emb[:1], emb[2:])).all()


def test_cosine_similarity_is_row_wise():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 1.0], [0.0, -3.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [np.sqrt(0.5), -1.0], rtol=1e-6)
    with pytest.raises(ValueError):
        cosine_similarity(a, b[:1])


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="campplus, resemblyzer, wavlm_sv"):
        build_speaker_encoder("ecapa")
    assert set(SPEAKER_ENCODERS) == {"campplus", "resemblyzer", "wavlm_sv"}


def save_tiny_wavlm(folder, feat_extract_norm: str) -> str:
    """A random-initialised WavLM x-vector model (16-d output) and its feature extractor."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(0)
    config = WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
                         feat_extract_norm=feat_extract_norm, num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, num_buckets=32, max_bucket_distance=64,
                         tdnn_dim=(32, 32), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=16)
    WavLMForXVector(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("feat_extract_norm, batch_size", [("layer", 8), ("group", 1)])
def test_wavlm_backend_loads_a_local_folder(tmp_path, speech, feat_extract_norm, batch_size):
    folder = save_tiny_wavlm(tmp_path / "tiny-wavlm", feat_extract_norm)
    encoder = build_speaker_encoder("wavlm_sv", model=folder, device="cpu")
    clips = [speech["en-us-m7"][0], speech["en-us-f3"][1], speech["en-us-m7"][0]]  # different lengths
    emb = encoder.embed(clips, RATE)
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert cosine_similarity(emb[:1], emb[2:])[0] == pytest.approx(1.0, abs=1e-5)
    one_by_one = np.concatenate([encoder.embed([clip], RATE) for clip in clips])
    np.testing.assert_allclose(emb, one_by_one, atol=1e-4)  # padding in a batch changes nothing
    info = encoder.describe()
    assert info["backend"] == "wavlm_sv" and info["source"] == folder and info["model"] == folder
    assert (info["device"], info["batch_size"]) == ("cpu", batch_size)


def test_wavlm_backend_refuses_a_hub_id_that_is_not_cached(monkeypatch):
    monkeypatch.delenv("TTSFRAME_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(UserError, match=r"ttsframe-test/no-such-model.*hf download ttsframe-test/no-such-model"):
        build_speaker_encoder("wavlm_sv", model="ttsframe-test/no-such-model", device="cpu")
    with pytest.raises(UserError, match="folder not found"):
        build_speaker_encoder("wavlm_sv", model="./no/such/folder", device="cpu")
