"""MelleSynthesizer with a tiny random MELLE and Griffin-Lim: batches, seeds, frame budget, the
mel configuration checks, the default vocoder, and loading from a training checkpoint."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.inference import SynthesisItem
from ttsframe.models.melle.generate import MelleSamplingOptions
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import melle_tiny
from ttsframe.models.melle.synthesizer import MelleSynthesizer
from ttsframe.text import CharFrontend, Vocabulary
from ttsframe.vocoders import build_vocoder
from ttsframe.vocoders.griffin_lim import GriffinLim

RATE, HOP, M = 8000, 64, 20
MEL = MelConfig(sample_rate=RATE, n_fft=256, hop_length=HOP, win_length=256, n_mels=M, fmax=4000.0)
CODEC = {"name": "mel", "mel": dataclasses.asdict(MEL), "device": "cpu"}
TEXTS = ["hello world.", "a quick test, of speech!", "the voice prompt says this"]
OPTIONS = MelleSamplingOptions(seed=3, max_frames_per_token=2.0, stop_threshold=0.99)  # runs to the budget


def tone(seconds: float, f0: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * t)) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return wav.astype(np.float32)


def items():
    return [SynthesisItem("hello world", tone(0.8, 120.0), RATE, "a quick test"),
            SynthesisItem("a test.", tone(0.4, 200.0, 16000), 16000, "hello")]


@pytest.fixture(scope="module")
def parts():
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(TEXTS), frontend.settings())
    torch.manual_seed(0)
    model = Melle(melle_tiny(len(vocab), n_mels=M))
    model.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    return model, frontend, vocab


@pytest.fixture(scope="module")
def synth(parts):
    model, frontend, vocab = parts
    return MelleSynthesizer(model, MEL, frontend, vocab, GriffinLim(MEL, n_iter=4), text_config={"frontend": "chars"},
                            max_prompt_seconds=0.5)


def test_batch_of_two_gives_two_wavs_within_the_frame_budget(synth):
    wavs = synth.synthesize(items(), OPTIONS)
    assert set(synth.last_timings) == {"frontend", "prompt", "melle", "vocoder"}
    assert len(wavs) == 2 and synth.sample_rate == RATE
    for wav, text in zip(wavs, ["hello world", "a test."]):
        assert wav.dtype == np.float32 and wav.ndim == 1 and np.isfinite(wav).all()
        assert len(wav) == 2 * len(text) * HOP  # the random stop head stays < 0.99: the whole budget
    assert synth.synthesize([], OPTIONS) == []


def test_same_seed_same_audio_other_seed_other_audio(synth):
    first, again = synth.synthesize(items(), OPTIONS), synth.synthesize(items(), OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = synth.synthesize(items(), dataclasses.replace(OPTIONS, seed=4))
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, other))


def test_prompts_are_cut_and_text_errors_are_clear(synth):
    tokens, mels = synth.encode_prompts(items())
    assert mels[0].shape[1] == M and 0 < mels[0].shape[0] <= MEL.frames_for(int(0.5 * RATE))  # 0.8 s cut to 0.5
    assert mels[1].shape == (MEL.frames_for(int(0.4 * RATE)), M)  # resampled from 16 kHz, not cut
    assert tokens[0][-1] == synth.vocab.encode([" "])[0]  # the prompt ends with a word boundary
    with pytest.raises(UserError, match="'z'"):
        synth.synthesize([SynthesisItem("zzz", tone(0.4, 150.0), RATE, "hello")], OPTIONS)
    with pytest.raises(UserError, match="too short"):
        synth.synthesize([SynthesisItem("hello", tone(0.001, 150.0), RATE, "hello")], OPTIONS)


def test_mel_configurations_must_match(parts):
    model, frontend, vocab = parts
    other = dataclasses.replace(MEL, hop_length=32)
    with pytest.raises(ConfigError, match="hop_length: 32 vs 64"):
        MelleSynthesizer(model, MEL, frontend, vocab, build_vocoder("griffin_lim", other))
    with pytest.raises(UserError, match="n_mels=20 \\(expected 40\\)"):
        MelleSynthesizer(model, dataclasses.replace(MEL, n_mels=40), frontend, vocab)


def test_default_vocoder_falls_back_to_griffin_lim_for_other_mel_settings(parts):
    model, frontend, vocab = parts
    with pytest.warns(UserWarning, match="Griffin-Lim"):
        synth = MelleSynthesizer(model, MEL, frontend, vocab)
    assert isinstance(synth.vocoder, GriffinLim)


def save_checkpoint(path, model, family="melle"):
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 5,
                "hyper_parameters": {"model_config": dataclasses.asdict(model.config), "family": family,
                                     "task": "melle", "mel": dataclasses.asdict(MEL)}}, path)


def test_from_checkpoints_reads_weights_only_training_files(parts, synth, tmp_path):
    model, frontend, vocab = parts
    save_checkpoint(tmp_path / "melle.ckpt", model)
    vocab.save(tmp_path / "vocab.json")
    (tmp_path / "train.index.json").write_text(json.dumps({"codec": {"name": "mel", "mel": dataclasses.asdict(MEL)}}))
    loaded = MelleSynthesizer.from_checkpoints(tmp_path / "melle.ckpt", tmp_path, CODEC, {"frontend": "chars"},
                                               vocoder=synth.vocoder, device="cpu", max_prompt_seconds=0.5)
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()))
    expected = synth.synthesize(items(), OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(items(), OPTIONS), expected))
    with pytest.raises(UserError, match="codec must be `mel`"):
        MelleSynthesizer.from_checkpoints(tmp_path / "melle.ckpt", tmp_path, {"name": "spectral"},
                                          {"frontend": "chars"})
    save_checkpoint(tmp_path / "valle.ckpt", model, family="valle")
    with pytest.raises(UserError, match="family='valle'"):
        MelleSynthesizer.from_checkpoints(tmp_path / "valle.ckpt", tmp_path, CODEC, {"frontend": "chars"},
                                          vocoder=synth.vocoder, device="cpu")
    shards_mel = {**dataclasses.asdict(MEL), "fmax": 3000.0}
    (tmp_path / "train.index.json").write_text(json.dumps({"codec": {"name": "mel", "mel": shards_mel}}))
    with pytest.raises(ConfigError, match="fmax: 3000.0 vs 4000.0"):
        MelleSynthesizer.from_checkpoints(tmp_path / "melle.ckpt", tmp_path, CODEC, {"frontend": "chars"},
                                          vocoder=synth.vocoder, device="cpu")
