"""Release bundles: write -> load gives the same audio for the same seed; loading runs no pickle
and imports no training code; the model card reports what the run left on disk."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from hub_cache import hub_cache

import ttsframe
from ttsframe.codecs.mel import MelConfig
from ttsframe.codecs.spectral import Config, SpectralCodec
from ttsframe.errors import UserError
from ttsframe.inference import SynthesisItem
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.models.valle.presets import valle_tiny
from ttsframe.models.valle.synthesizer import ValleSynthesizer
from ttsframe.modules.sampling import SamplingOptions
from ttsframe.release import load_release, write_release
from ttsframe.text import CharFrontend, Vocabulary

RATE = 8000
CODEC = dict(name="spectral", n_codebooks=2, codebook_size=16, kmeans_iters=3, fit_max_frames=400,
             griffin_lim_iters=2, device="cpu",
             mel=dict(sample_rate=RATE, n_fft=256, hop_length=64, win_length=256, n_mels=20, fmax=4000.0))
OPTIONS = SamplingOptions(top_k=8, seed=11, max_frames_per_token=2.0, max_frames_base=8)
CARD = {"corpus": "builtin", "data": {"splits": {"train": {"utterances": 12, "hours": 0.0123, "speakers": 3}}},
        "training": {"train_ar": {"global_step": 42, "last_train_loss": 2.5, "best_val_loss": 2.75}},
        "eval": {"test": {"aggregates": {"ground_truth": {"wer": 0.05}, "synthesis": {"wer": 0.125, "rtf": 0.5}},
                          "protocol": {"asr": {"backend": "faster_whisper", "model": "tiny.en"}},
                          "skipped": {"utmos": "no local model"}}}}


def prompt_wav(seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 150 * t * (1 + 0.3 * t))).astype(np.float32)


ITEMS = [SynthesisItem("hello world", prompt_wav(), RATE, "the test"),
         SynthesisItem("a test.", prompt_wav(0.3), RATE, "hello")]


@pytest.fixture(scope="module")
def synth():
    codec = SpectralCodec(Config(**{**CODEC, "mel": MelConfig(**CODEC["mel"])}))
    codec.fit([prompt_wav(1.0)])
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["hello world.", "the test, a"]), frontend.settings())
    torch.manual_seed(0)
    config = valle_tiny(len(vocab), 2, 16)
    return ValleSynthesizer(ValleAR(config), ValleNAR(config), codec, frontend, vocab, codec_config=CODEC,
                            text_config={"frontend": "chars", "language": "en-us"}, max_prompt_seconds=0.5)


@pytest.fixture(scope="module")
def release(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    write_release(out, synth, {"recipe": "toy", "seed": 1, "data": {"corpus": "builtin"}}, CARD)
    return out


def test_release_files_and_card(release):
    names = {p.name for p in release.iterdir()}
    assert names == {"config.yaml", "ar.safetensors", "nar.safetensors", "model_config.json", "vocab.json",
                     "codec.json", "codec.safetensors", "README.md"}
    config = yaml.safe_load((release / "config.yaml").read_text())
    assert config["recipe"] == "toy" and config["text"]["frontend"] == "chars"
    assert config["release"]["family"] == "valle" and config["release"]["format_version"] == 1
    assert json.loads((release / "codec.json").read_text())["describe"]["n_codebooks"] == 2
    card = (release / "README.md").read_text()
    for fact in ("builtin", "0.0123 h", "3 speakers", "42 steps", "2.5", "| wer | 0.05 | 0.125 |", "faster_whisper tiny.en",
                 "utmos not computed: no local model", "load_release", "License"):
        assert fact in card, fact


def test_round_trip_same_audio_without_pickle(synth, release, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a release must load without pickle")

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(module, name, refuse)
    loaded = ttsframe.load_release(release, device="cpu")
    assert loaded.max_prompt_seconds == 0.5 and loaded.vocab == synth.vocab
    expected = synth.synthesize(ITEMS, OPTIONS)
    got = loaded.synthesize(ITEMS, OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_loading_imports_no_training_code(release):
    code = ("import sys, numpy as np, ttsframe\n"
            "from ttsframe.inference import SynthesisItem\n"
            f"s = ttsframe.load_release({str(release)!r}, device='cpu')\n"
            "s.synthesize([SynthesisItem('hello', np.zeros(2000, np.float32), 8000, 'the')])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')"
            " or m.startswith('ttsframe.training') or m.endswith('.task'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_bad_release_folders_fail_clearly(release, tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_release(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in release.iterdir():
        if p.name != "nar.safetensors":
            (broken / p.name).write_bytes(p.read_bytes())
    with pytest.raises(UserError, match="nar.safetensors is missing"):
        load_release(broken, device="cpu")
    config = yaml.safe_load((release / "config.yaml").read_text())
    config["release"]["format_version"] = 99
    (broken / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="format 99"):
        load_release(broken, device="cpu")


def test_cli_synthesize(release, tmp_path, capsys):
    import soundfile as sf

    from ttsframe.__main__ import main

    sf.write(tmp_path / "voice.wav", prompt_wav(), RATE)
    args = ["synthesize", "--release", str(release), "--text", "hello world", "--prompt-wav",
            str(tmp_path / "voice.wav"), "--prompt-text", "the test", "--out", str(tmp_path / "out.wav"),
            "--top-k", "8", "--seed", "2", "--device", "cpu"]
    assert main(args) == 0
    wav, rate = sf.read(tmp_path / "out.wav")
    assert rate == RATE and len(wav) > 0
    assert main([*args[:2], str(tmp_path / "nope"), *args[3:]]) == 2
    assert main([*args[:6], str(tmp_path / "missing.wav"), *args[7:]]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "nope not found" in errors[0] and "missing.wav: unreadable audio" in errors[1]


def test_card_front_matter_is_hub_model_card_metadata(release):
    card = (release / "README.md").read_text()
    assert card.startswith("---\n")
    front, body = card[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front)
    assert meta["license"] == "apache-2.0" and meta["language"] == ["en"] and meta["library_name"] == "ttsframe"
    assert meta["pipeline_tag"] == "text-to-speech" and {"text-to-speech", "valle"} <= set(meta["tags"])
    assert "datasets" not in meta  # the built-in corpus is on no hub
    assert body.lstrip().startswith("# toy:")


def test_a_hub_id_in_the_local_cache_loads_like_the_folder(synth, release, tmp_path, monkeypatch, capsys):
    import soundfile as sf
    from huggingface_hub import constants

    from ttsframe.__main__ import main

    cache = hub_cache(tmp_path / "hub", "someone/toy-tts", release)
    loaded = load_release("someone/toy-tts", device="cpu", cache_dir=cache)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(ITEMS, OPTIONS), synth.synthesize(ITEMS, OPTIONS)))
    with pytest.raises(UserError, match="not in the local Hugging Face cache.*hf download someone/other"):
        load_release("someone/other", device="cpu", cache_dir=cache, allow_download=False)
    # The synthesize command takes the id too (the default cache: huggingface_hub's HF_HUB_CACHE).
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    sf.write(tmp_path / "voice.wav", prompt_wav(), RATE)
    assert main(["synthesize", "--release", "someone/toy-tts", "--text", "hello world", "--prompt-wav",
                 str(tmp_path / "voice.wav"), "--prompt-text", "the test", "--out", str(tmp_path / "out.wav"),
                 "--device", "cpu"]) == 0
    assert len(sf.read(tmp_path / "out.wav")[0]) > 0


def test_a_release_synthesizes_with_the_options_it_was_evaluated_with(synth, tmp_path, capsys):
    import copy

    import soundfile as sf

    from ttsframe.__main__ import main

    evaluated = copy.copy(synth)
    evaluated.default_options = OPTIONS
    out = write_release(tmp_path / "release", evaluated, {"recipe": "toy", "data": {"corpus": "builtin"}})
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["release"]["sampling"]["top_k"] == 8 and config["release"]["sampling"]["seed"] == 11
    assert "`top_k=8`" in (out / "README.md").read_text()
    loaded = load_release(out, device="cpu")
    assert loaded.default_options == OPTIONS
    expected = synth.synthesize(ITEMS, OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(ITEMS), expected))
    sf.write(tmp_path / "voice.wav", prompt_wav(), RATE)
    args = ["synthesize", "--release", str(out), "--text", "hello world", "--prompt-wav", str(tmp_path / "voice.wav"),
            "--prompt-text", "the test", "--out", str(tmp_path / "out.wav"), "--device", "cpu"]
    assert main([*args, "--seed", "3"]) == 0
    shown = capsys.readouterr().out
    assert "top_k=8" in shown and "seed=3" in shown and "max_frames_base=8" in shown  # flags over the release's
    config["release"]["sampling"]["beam_width"] = 4
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="release.sampling has beam_width"):
        load_release(out, device="cpu")
