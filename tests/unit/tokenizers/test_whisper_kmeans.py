"""whisper_kmeans: fit k-means on the bundled tiny.en encoder over a few espeak clips, save, load,
encode (shapes, range, determinism, padded batches); a tiny random transformers Whisper folder as
the other encoder source; missing or mismatched files are refused."""

import json

import pytest
import soundfile as sf
import torch

from data_prep.builtin import TRAIN_VOICES
from data_prep.builtin_synth import Job, synthesize
from ttsframe.data.manifest import Utterance
from ttsframe.errors import ConfigError, UserError
from ttsframe.tokenizers import SpeechTokenizer
from ttsframe.tokenizers.whisper_kmeans import (WhisperKmeansConfig, fit_subset, fit_whisper_kmeans,
                                                load_whisper_kmeans)

SENTENCES = ["the quick brown fox jumps over the lazy dog", "please call stella",
             "we also need a small plastic snake"]
RATE = 16000
K = 8


@pytest.fixture(scope="module", autouse=True)
def private_hash_cache(tmp_path_factory):
    """Hashes are remembered in a folder of this module's own, not in ~/.cache/ttsframe."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTSFRAME_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    jobs = [Job(TRAIN_VOICES[0], text, str(folder / f"{i}.wav"), RATE) for i, text in enumerate(SENTENCES)]
    synthesize(jobs, num_workers=1)
    return [Utterance(id=f"u{i}", audio=job.path, text=job.text, speaker="s", sample_rate=RATE,
                      duration=sf.info(job.path).duration) for i, job in enumerate(jobs)]


def config(**overrides) -> WhisperKmeansConfig:
    return WhisperKmeansConfig(**{"n_clusters": K, "kmeans_iters": 5, "device": "cpu", **overrides})


@pytest.fixture(scope="module")
def fitted(utterances, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    return folder, fit_whisper_kmeans(config(), utterances, folder)


@pytest.fixture(scope="module")
def tokenizer(fitted):
    return load_whisper_kmeans(fitted[0], config())


def clip(utterance) -> torch.Tensor:
    return torch.from_numpy(sf.read(utterance.audio, dtype="float32")[0])


def test_fit_writes_centroids_and_description(fitted, utterances):
    folder, summary = fitted
    assert summary["utterances"] == 3 and summary["n_clusters"] == K and summary["dim"] == 384
    assert summary["frames"] == sum(len(clip(u)) // 320 for u in utterances)
    assert 1 < summary["codes_used"] <= K
    meta = json.loads((folder / "tokenizer.json").read_text())
    assert meta["name"] == "whisper_kmeans" and meta["model"] == "bundled" and meta["n_clusters"] == K
    assert meta["sha256"] == summary["sha256"] and meta["encoder"]["hub_id"] == "Systran/faster-whisper-tiny.en"
    assert sorted(p.name for p in folder.iterdir()) == ["tokenizer.json", "tokenizer.safetensors"]


def test_fit_is_deterministic_for_the_seed(fitted, utterances, tmp_path):
    assert fit_whisper_kmeans(config(), utterances, tmp_path)["sha256"] == fitted[1]["sha256"]


def test_encode_shapes_range_and_description(tokenizer, fitted, utterances):
    assert isinstance(tokenizer, SpeechTokenizer)
    assert (tokenizer.sample_rate, tokenizer.frame_rate, tokenizer.vocab_size) == (16000, 50.0, K)
    wav = clip(utterances[0])
    ids = tokenizer.encode(wav[None])
    assert ids.dtype == torch.long and ids.shape == (1, tokenizer.frames_for(len(wav))) == (1, len(wav) // 320)
    assert 0 <= ids.min() and ids.max() < K and ids.unique().numel() > 1
    assert torch.equal(tokenizer.encode(wav[None]), ids)
    assert tokenizer.describe() == {"name": "whisper_kmeans", "frame_rate": 50.0, "vocab_size": K,
                                    "folder": str(fitted[0].resolve()), "sha256": fitted[1]["sha256"],
                                    "model": "bundled"}


def test_padded_batch_matches_each_clip_alone(tokenizer, utterances):
    wavs = [clip(u) for u in utterances[:2]] + [torch.zeros(0)]  # an empty row gives no tokens
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(3, int(lengths.max()) + 999)  # padding past the longest too
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    ids = tokenizer.encode(batch, lengths)
    assert ids.shape == (3, tokenizer.frames_for(batch.shape[1]))
    assert tokenizer.encode(torch.zeros(1, 319)).shape == (1, 0)
    for i, w in enumerate(wavs):
        n = tokenizer.frames_for(len(w))
        assert torch.equal(ids[i, :n], tokenizer.encode(w[None])[0] if n else ids[i, :0]) and not ids[i, n:].any()


def test_load_from_a_description_and_refusals(tokenizer, fitted, tmp_path):
    folder = fitted[0]
    assert load_whisper_kmeans(folder, tokenizer.describe()).vocab_size == K
    with pytest.raises(UserError, match="train_tokenizer"):
        load_whisper_kmeans(tmp_path / "nowhere", config())
    with pytest.raises(ConfigError, match="n_clusters=8"):
        load_whisper_kmeans(folder, config(n_clusters=16))
    with pytest.raises(ConfigError, match="sha256"):
        load_whisper_kmeans(folder, {**tokenizer.describe(), "sha256": "0" * 64})


def test_changed_centroids_file_is_refused(fitted, tmp_path):
    for name in ("tokenizer.json", "tokenizer.safetensors"):
        (tmp_path / name).write_bytes((fitted[0] / name).read_bytes())
    with open(tmp_path / "tokenizer.safetensors", "ab") as f:
        f.write(b" ")
    with pytest.raises(UserError, match="changed after the fit"):
        load_whisper_kmeans(tmp_path, config())


def test_fit_subset_is_seeded_and_within_the_budget():
    utts = [Utterance(id=str(i), audio="", text="", speaker="s", duration=1.0 + i, sample_rate=RATE)
            for i in range(10)]
    chosen = fit_subset(utts, 12.0, seed=3)
    assert [u.id for u in chosen] == [u.id for u in fit_subset(utts, 12.0, seed=3)]
    assert sum(u.duration for u in chosen) <= 12.0 and len(fit_subset(utts, 0.5, seed=3)) == 1


def test_transformers_whisper_folder_as_the_encoder(utterances, tmp_path):
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    tiny = WhisperConfig(vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                         decoder_ffn_dim=32, max_source_positions=1500, max_target_positions=16,
                         pad_token_id=0, bos_token_id=1, eos_token_id=1, decoder_start_token_id=2)
    WhisperModel(tiny).save_pretrained(tmp_path / "whisper")
    cfg = config(model=str(tmp_path / "whisper"), n_clusters=4)
    summary = fit_whisper_kmeans(cfg, utterances[:2], tmp_path / "tok")
    assert summary["dim"] == 16 and summary["model"] == str((tmp_path / "whisper").resolve())
    tokenizer = load_whisper_kmeans(tmp_path / "tok", cfg)
    wav = clip(utterances[1])
    ids = tokenizer.encode(wav[None])
    assert ids.shape == (1, len(wav) // 320) and ids.max() < 4
    with pytest.raises(UserError, match="Hugging Face cache"):
        fit_whisper_kmeans(config(model="nobody/no-such-whisper"), utterances[:1], tmp_path / "none")
