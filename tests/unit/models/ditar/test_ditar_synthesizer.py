"""DiTARSynthesizer with a tiny random DiTAR and Griffin-Lim: batches within the target text's
frame budget, seeds, prompts cut to whole patches, the part checks, loading from a training
checkpoint, and a release round trip."""

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.inference import SynthesisItem
from ttsframe.models.ditar.generate import DiTARSamplingOptions
from ttsframe.models.ditar.model import DiTAR
from ttsframe.models.ditar.presets import ditar_tiny
from ttsframe.models.ditar.synthesizer import DiTARSynthesizer
from ttsframe.release import load_release, write_release
from ttsframe.text import CharFrontend, Vocabulary
from ttsframe.vocoders import build_vocoder
from ttsframe.vocoders.griffin_lim import GriffinLim

RATE, HOP, M = 8000, 64, 20
MEL = MelConfig(sample_rate=RATE, n_fft=256, hop_length=HOP, win_length=256, n_mels=M, fmax=4000.0)
CODEC = {"name": "mel", "mel": dataclasses.asdict(MEL), "device": "cpu"}
TEXTS = ["hello world.", "a quick test, of speech!", "the voice prompt says this"]
OPTIONS = DiTARSamplingOptions(seed=3, nfe=3, max_frames_per_token=2.0)


def chirp(seconds: float, f0: float, rate: int = RATE) -> np.ndarray:
    """A rising tone, the prompts' "voice"."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * t))).astype(np.float32)


# (target text, prompt seconds, prompt f0, prompt sample rate, prompt text); the second prompt is resampled
REQUESTS = [("hello world", 0.8, 120.0, RATE, "a quick test"), ("a test.", 0.4, 200.0, 16000, "hello")]


def items():
    return [SynthesisItem(text, chirp(seconds, f0, rate), rate, prompt) for text, seconds, f0, rate, prompt in REQUESTS]


@pytest.fixture(scope="module")
def synth():
    """A random `ditar_tiny` whose stop head never fires (every item runs to its frame budget)."""
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(TEXTS), frontend.settings())
    torch.manual_seed(0)
    model = DiTAR(ditar_tiny(len(vocab), n_mels=M))
    model.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    model.stop_head.set_constant(-50.0)
    return DiTARSynthesizer(model, MEL, frontend, vocab, GriffinLim(MEL, n_iter=4),
                            text_config={"frontend": "chars", "language": "en-us"}, max_prompt_seconds=0.5)


def test_batch_within_the_target_text_budget_and_fixed_by_the_seed(synth):
    wavs = synth.synthesize(items(), OPTIONS)
    assert set(synth.last_timings) == {"frontend", "prompt", "ditar", "vocoder"} and synth.sample_rate == RATE
    budgets = [2 * len(text) * HOP for text, *_ in REQUESTS]  # the target text's budget, not the prompt's
    assert [len(w) for w in wavs] == budgets
    assert all(w.dtype == np.float32 and w.ndim == 1 and np.isfinite(w).all() for w in wavs)
    assert all(np.array_equal(a, b) for a, b in zip(wavs, synth.synthesize(items(), OPTIONS)))
    reseeded = synth.synthesize(items(), dataclasses.replace(OPTIONS, seed=4))
    assert not any(np.array_equal(a, b) for a, b in zip(wavs, reseeded))
    assert synth.synthesize([], OPTIONS) == []


def test_prompts_are_cut_and_errors_are_clear(synth):
    tokens, mels = synth.encode_prompts(items())
    assert mels[0].shape[1] == M and 0 < mels[0].shape[0] <= MEL.frames_for(int(0.5 * RATE))  # 0.8 s cut to 0.5
    assert mels[1].shape == (MEL.frames_for(int(0.4 * RATE)), M)  # resampled from 16 kHz, not cut
    assert tokens[0][-1] == synth.vocab.encode([" "])[0]  # the prompt ends with a word boundary
    with pytest.raises(UserError, match="'z'"):
        synth.synthesize([SynthesisItem("zzz", chirp(0.4, 150.0), RATE, "hello")], OPTIONS)
    with pytest.raises(UserError, match="too short"):  # fewer frames than one patch
        synth.synthesize([SynthesisItem("hello", chirp(0.02, 150.0), RATE, "hello")], OPTIONS)


def test_parts_must_fit_and_checkpoints_load_to_the_same_audio(synth, tmp_path):
    model, frontend, vocab = synth.model, synth.frontend, synth.vocab
    with pytest.raises(ConfigError, match="hop_length: 32 vs 64"):
        DiTARSynthesizer(model, MEL, frontend, vocab,
                         build_vocoder("griffin_lim", dataclasses.replace(MEL, hop_length=32)))
    with pytest.raises(UserError, match="DiTAR model does not match .* n_mels=20 \\(expected 40\\)"):
        DiTARSynthesizer(model, dataclasses.replace(MEL, n_mels=40), frontend, vocab)

    vocab.save(tmp_path / "vocab.json")
    (tmp_path / "train.index.json").write_text(json.dumps({"codec": CODEC}))
    for family in ("ditar", "melle"):  # a checkpoint as the train stage writes it, and one of another family
        torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                    "hyper_parameters": {"model_config": dataclasses.asdict(model.config), "family": family,
                                         "task": family}}, tmp_path / f"{family}.ckpt")
    load = functools.partial(DiTARSynthesizer.from_checkpoints, shard_dir=tmp_path, codec_cfg=CODEC,
                             text_cfg={"frontend": "chars"}, vocoder=synth.vocoder, device="cpu",
                             max_prompt_seconds=0.5)
    loaded, expected = load(tmp_path / "ditar.ckpt"), synth.synthesize(items(), OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.synthesize(items(), OPTIONS), expected))
    with pytest.raises(UserError, match="family='melle'"):
        load(tmp_path / "melle.ckpt")
    with pytest.raises(UserError, match="DiTAR models log-mel frames: the codec must be `mel`"):
        load(tmp_path / "ditar.ckpt", codec_cfg={"name": "spectral"})


def test_release_round_trip_gives_the_same_audio(synth, tmp_path):
    write_release(tmp_path, synth, {"recipe": "ditar", "data": {"corpus": "builtin"}})
    assert {"config.yaml", "README.md", "model.safetensors", "model_config.json", "mel.json", "vocab.json",
            "vocoder.json"} <= {p.name for p in tmp_path.iterdir()}
    loaded = load_release(tmp_path, device="cpu")
    assert isinstance(loaded, DiTARSynthesizer) and loaded.max_prompt_seconds == 0.5
    first, second = synth.synthesize(items(), OPTIONS), loaded.synthesize(items(), OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    card = (tmp_path / "README.md").read_text()
    assert "DiTAR zero-shot TTS" in card and "patches of 4 frames" in card and "DiTARSamplingOptions" in card
    [resynthesized] = loaded.resynthesize([chirp(0.6, 150.0)], RATE)
    assert len(resynthesized) == MEL.frames_for(int(0.6 * RATE)) * HOP and np.isfinite(resynthesized).all()


def test_stages_find_the_family_that_shares_melles_option_names():
    from omegaconf import OmegaConf

    from ttsframe.pipeline.runner import StageContext
    from ttsframe.pipeline.synthesize import stage_family

    def ctx(**options):
        return StageContext(4, "synthesize", None, None, False, options)

    assert stage_family(OmegaConf.create({"model": {"family": "ditar"}}), ctx(model_stage="train")) is DiTARSynthesizer
    assert stage_family(OmegaConf.create({}), ctx(model_stage="train_ditar")) is DiTARSynthesizer
    with pytest.raises(ConfigError, match="options of several families \\(melle, ditar\\)"):
        stage_family(OmegaConf.create({}), ctx(model_stage="train"))
