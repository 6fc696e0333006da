"""MELLE release bundles: write -> load gives the same audio for the same seed, with Griffin-Lim or
a HiFi-GAN generator written into the folder; loading runs no pickle and imports no training
code; `load_release` and the `synthesize` command dispatch on the release's family."""

import dataclasses
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import ttsframe
from ttsframe.__main__ import main
from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import UserError
from ttsframe.inference import SynthesisItem
from ttsframe.models.melle.generate import MelleSamplingOptions
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import melle_tiny
from ttsframe.models.melle.synthesizer import MelleSynthesizer
from ttsframe.models.valle.synthesizer import ValleSynthesizer
from ttsframe.release import load_release, write_release
from ttsframe.text import CharFrontend, Vocabulary
from ttsframe.vocoders.griffin_lim import GriffinLim
from ttsframe.vocoders.hifigan import HifiGanConfig, HifiGanGenerator, HifiGanVocoder

RATE, M = 8000, 20
MEL = MelConfig(sample_rate=RATE, n_fft=256, hop_length=64, win_length=256, n_mels=M, fmax=4000.0)
OPTIONS = MelleSamplingOptions(seed=11, max_frames_per_token=1.5)
BASE_FILES = {"config.yaml", "README.md", "model.safetensors", "model_config.json", "mel.json", "vocab.json",
              "vocoder.json"}


def prompt_wav(seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 150 * t * (1 + 0.3 * t))).astype(np.float32)


ITEMS = [SynthesisItem("hello world", prompt_wav(), RATE, "the test"),
         SynthesisItem("a test.", prompt_wav(0.3), RATE, "hello")]


def make_synth(vocoder) -> MelleSynthesizer:
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["hello world.", "the test, a"]), frontend.settings())
    torch.manual_seed(0)
    model = Melle(melle_tiny(len(vocab), n_mels=M))
    model.set_mel_stats(torch.full((M,), -4.0), torch.full((M,), 1.5))
    return MelleSynthesizer(model, MEL, frontend, vocab, vocoder, max_prompt_seconds=0.5,
                            text_config={"frontend": "chars", "language": "en-us"})


def tiny_hifigan() -> HifiGanVocoder:
    torch.manual_seed(1)
    config = HifiGanConfig(n_mels=M, upsample_rates=[8, 8], upsample_kernel_sizes=[16, 16], upsample_initial_channel=16,
                           resblock_kernel_sizes=[3], resblock_dilations=[[1, 3]])
    return HifiGanVocoder(MEL, generator=HifiGanGenerator(config))


@pytest.fixture(scope="module")
def synth():
    return make_synth(GriffinLim(MEL, n_iter=4))


@pytest.fixture(scope="module")
def release(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    write_release(out, synth, {"recipe": "melle_toy", "seed": 1, "data": {"corpus": "builtin"}},
                  {"training": {"train_melle": {"global_step": 7, "last_train_loss": 1.5}}})
    return out


def refuse_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a release must load without pickle")

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(module, name, refuse)


def test_release_files_config_and_card(release):
    assert {p.name for p in release.iterdir()} == BASE_FILES
    config = yaml.safe_load((release / "config.yaml").read_text())
    assert config["release"]["family"] == "melle" and config["release"]["max_prompt_seconds"] == 0.5
    assert json.loads((release / "mel.json").read_text()) == dataclasses.asdict(MEL)
    assert json.loads((release / "vocoder.json").read_text())["name"] == "griffin_lim"
    assert json.loads((release / "model_config.json").read_text())["model"]["n_mels"] == M
    card = (release / "README.md").read_text()
    for fact in ("MELLE zero-shot TTS", "Griffin-Lim (4 iterations", "7 steps", "MelleSamplingOptions",
                 "ttsframe.models.melle.generate", "builtin"):
        assert fact in card, fact


def test_round_trip_same_audio_without_pickle(synth, release, monkeypatch):
    refuse_pickle(monkeypatch)
    loaded = ttsframe.load_release(release, device="cpu")
    assert isinstance(loaded, MelleSynthesizer) and loaded.vocab == synth.vocab and loaded.max_prompt_seconds == 0.5
    assert bool(loaded.model.mel_stats_fitted) and torch.equal(loaded.model.mel_mean, synth.model.mel_mean)
    expected = synth.synthesize(ITEMS, OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(ITEMS, OPTIONS), expected))
    assert MelleSynthesizer.from_release(release, device="cpu").FAMILY == "melle"
    with pytest.raises(UserError, match="family 'melle', not 'valle'"):
        ValleSynthesizer.from_release(release, device="cpu")


def test_a_hifigan_vocoder_is_written_in_and_removed_again(tmp_path, monkeypatch):
    synth = make_synth(tiny_hifigan())
    write_release(tmp_path, synth, {"recipe": "toy"})
    assert {p.name for p in tmp_path.iterdir()} == BASE_FILES | {"generator.safetensors", "generator.json"}
    described = json.loads((tmp_path / "vocoder.json").read_text())
    assert described["name"] == "hifigan" and described["file"] == "generator.safetensors"
    with monkeypatch.context() as patch:
        refuse_pickle(patch)
        loaded = load_release(tmp_path, device="cpu")
    assert isinstance(loaded.vocoder, HifiGanVocoder)
    expected = synth.synthesize(ITEMS, OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(ITEMS, OPTIONS), expected))
    write_release(tmp_path, make_synth(GriffinLim(MEL, n_iter=2)), {"recipe": "toy"})  # the old generator goes
    assert {p.name for p in tmp_path.iterdir()} == BASE_FILES


def test_loading_imports_no_training_code(release):
    code = ("import sys, numpy as np, ttsframe\n"
            "from ttsframe.inference import SynthesisItem\n"
            f"s = ttsframe.load_release({str(release)!r}, device='cpu')\n"
            "s.synthesize([SynthesisItem('hello', np.zeros(2000, np.float32), 8000, 'the')])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')"
            " or m.startswith('ttsframe.training') or m.endswith('.task'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_synthesize_maps_flags_to_the_family_options(release, tmp_path, capsys):
    sf.write(tmp_path / "voice.wav", prompt_wav(), RATE)
    args = ["synthesize", "--release", str(release), "--text", "hello world", "--prompt-wav",
            str(tmp_path / "voice.wav"), "--prompt-text", "the test", "--out", str(tmp_path / "out.wav"),
            "--temperature", "0.5", "--stop-threshold", "0.9", "--max-frames-per-token", "1.0", "--seed", "2",
            "--device", "cpu"]
    assert main(args) == 0
    wav, rate = sf.read(tmp_path / "out.wav")
    assert rate == RATE and 0 < len(wav) <= len("hello world") * MEL.hop_length
    assert "stop_threshold=0.9" in capsys.readouterr().out
    assert main([*args, "--top-k", "5"]) == 2
    assert main([*args[:-4], "--stop-threshold", "1.5"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert "--top-k: not an option of melle releases" in errors[0] and "--stop-threshold" in errors[0]
    assert "stop_threshold must be in (0, 1)" in errors[1]
