"""ValleSynthesizer with tiny random models and a tiny fitted spectral codec: batches, seeds,
prompt cutting, errors, and loading from training checkpoints."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.codecs.spectral import Config, SpectralCodec
from ttsframe.errors import UserError
from ttsframe.inference import SynthesisItem
from ttsframe.inference.prompt import cut_prompt, cut_symbols, quiet_cut
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.models.valle.presets import valle_tiny
from ttsframe.models.valle.synthesizer import ValleSynthesizer
from ttsframe.modules.sampling import SamplingOptions
from ttsframe.text import CharFrontend, Vocabulary

RATE, HOP, K, N = 8000, 64, 3, 16
CODEC = dict(name="spectral", n_codebooks=K, codebook_size=N, kmeans_iters=3, fit_max_frames=400,
             griffin_lim_iters=2, device="cpu",
             mel=dict(sample_rate=RATE, n_fft=256, hop_length=HOP, win_length=256, n_mels=20, fmax=4000.0))
TEXTS = ["hello world.", "a quick test, of speech!", "the voice prompt says this"]
OPTIONS = SamplingOptions(top_k=8, seed=3, max_frames_per_token=2.0, max_frames_base=8)


def tone(seconds: float, f0: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * t)) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return wav.astype(np.float32)


@pytest.fixture(scope="module")
def parts():
    codec = SpectralCodec(Config(**{**CODEC, "mel": MelConfig(**CODEC["mel"])}))
    codec.fit([tone(1.0, 140.0)])
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(TEXTS), frontend.settings())
    torch.manual_seed(0)
    config = valle_tiny(len(vocab), K, N)
    return ValleAR(config), ValleNAR(config), codec, frontend, vocab


@pytest.fixture(scope="module")
def synth(parts):
    return ValleSynthesizer(*parts, text_config={"frontend": "chars"}, max_prompt_seconds=0.5)


def items():
    return [SynthesisItem("hello world", tone(0.8, 120.0), RATE, "a quick test"),
            SynthesisItem("a test.", tone(0.4, 200.0, 16000), 16000, "hello")]


def test_batch_of_two_gives_two_wavs_of_plausible_length(synth):
    wavs = synth.synthesize(items(), OPTIONS)
    assert len(wavs) == 2 and synth.sample_rate == RATE
    for wav, text in zip(wavs, ["hello world", "a test."]):
        frames = len(wav) // HOP
        assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) % HOP == 0 and np.isfinite(wav).all()
        assert OPTIONS.min_frames <= frames <= 2 * len(text) + 8  # within the AR's frame budget


def test_same_seed_same_audio_other_seed_other_audio(synth):
    first, again = synth.synthesize(items(), OPTIONS), synth.synthesize(items(), OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = synth.synthesize(items(), dataclasses.replace(OPTIONS, seed=4))
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, other))


def test_unknown_symbols_fail_naming_them(synth):
    with pytest.raises(UserError, match="'z'"):
        synth.synthesize([SynthesisItem("zzz", tone(0.4, 150.0), RATE, "hello")], OPTIONS)
    with pytest.raises(UserError, match="nothing to say"):
        synth.synthesize([SynthesisItem("  ", tone(0.4, 150.0), RATE, "hello")], OPTIONS)


def test_prompt_cut_at_quiet_point_with_matching_words():
    wav = np.concatenate([tone(0.35, 150.0), np.zeros(400, np.float32), tone(0.5, 150.0)])  # pause at 0.35-0.40 s
    cut = quiet_cut(wav, RATE, max_seconds=0.5)
    assert 0.35 * RATE <= cut <= 0.40 * RATE
    symbols = list("one two three four")
    assert cut_symbols(symbols, 0.5) == list("one two")  # nearest boundary to position 9
    short, kept = cut_prompt(wav, RATE, symbols, max_seconds=0.5)
    assert len(short) == cut and kept and kept[-1] != " "
    assert cut_prompt(wav, RATE, symbols, None)[0] is wav


def test_models_must_match_codec_and_vocabulary(parts):
    ar, nar, codec, frontend, vocab = parts
    other = ValleAR(valle_tiny(len(vocab), K, N + 1))
    with pytest.raises(UserError, match="codebook_size"):
        ValleSynthesizer(other, nar, codec, frontend, vocab)


def save_checkpoint(path, model, task):
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 5,
                "hyper_parameters": {"model_config": dataclasses.asdict(model.config), "family": "valle",
                                     "task": task}}, path)


def test_from_checkpoints_reads_weights_only_training_files(parts, synth, tmp_path):
    ar, nar, codec, frontend, vocab = parts
    save_checkpoint(tmp_path / "ar.ckpt", ar, "valle_ar")
    save_checkpoint(tmp_path / "nar.ckpt", nar, "valle_nar")
    vocab.save(tmp_path / "vocab.json")
    codec.save(tmp_path / "codec.safetensors")
    (tmp_path / "train.index.json").write_text(json.dumps({"codec": codec.describe()}))
    loaded = ValleSynthesizer.from_checkpoints(tmp_path / "ar.ckpt", tmp_path / "nar.ckpt", tmp_path, CODEC,
                                               {"frontend": "chars"}, device="cpu", max_prompt_seconds=0.5)
    assert all(torch.equal(a, b) for a, b in zip(loaded.ar.state_dict().values(), ar.state_dict().values()))
    expected = synth.synthesize(items(), OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(items(), OPTIONS), expected))
    with pytest.raises(UserError, match="valle_ar"):  # the NAR checkpoint given as the AR
        ValleSynthesizer.from_checkpoints(tmp_path / "nar.ckpt", tmp_path / "nar.ckpt", tmp_path, CODEC,
                                          {"frontend": "chars"}, device="cpu")
    (tmp_path / "train.index.json").write_text(json.dumps({"codec": {**codec.describe(), "n_codebooks": 8}}))
    with pytest.raises(UserError, match="n_codebooks"):
        ValleSynthesizer.from_checkpoints(tmp_path / "ar.ckpt", tmp_path / "nar.ckpt", tmp_path, CODEC,
                                          {"frontend": "chars"}, device="cpu")


def test_a_pointer_ar_loads_from_its_checkpoint_and_round_trips_a_release(parts, tmp_path):
    from ttsframe.release import load_release, write_release

    _, nar, codec, frontend, vocab = parts
    torch.manual_seed(1)
    ar = ValleAR(dataclasses.replace(valle_tiny(len(vocab), K, N), phoneme_pointer=True, aligner_d_model=16))
    synth = ValleSynthesizer(ar, nar, codec, frontend, vocab, text_config={"frontend": "chars"}, codec_config=CODEC,
                             max_prompt_seconds=0.5)
    expected = synth.synthesize(items(), OPTIONS)
    save_checkpoint(tmp_path / "ar.ckpt", ar, "valle_ar")
    save_checkpoint(tmp_path / "nar.ckpt", nar, "valle_nar")
    vocab.save(tmp_path / "vocab.json")
    codec.save(tmp_path / "codec.safetensors")
    loaded = ValleSynthesizer.from_checkpoints(tmp_path / "ar.ckpt", tmp_path / "nar.ckpt", tmp_path, CODEC,
                                               {"frontend": "chars"}, device="cpu", max_prompt_seconds=0.5)
    assert loaded.ar.config.phoneme_pointer and loaded.ar.advance_head is not None
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(items(), OPTIONS), expected))
    release = write_release(tmp_path / "release", loaded, {"recipe": "toy", "seed": 1})
    again = load_release(release, device="cpu")
    assert again.ar.config == ar.config
    assert all(np.array_equal(a, b) for a, b in zip(again.synthesize(items(), OPTIONS), expected))
