"""The melle recipe's train stage on tiny hand-made mel shards: files, mel statistics, falling loss,
exact resume, and the feature check of the train stage."""

import csv
import json
import shutil

import lightning as L
import numpy as np
import pytest
import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.config import load_run_config
from ttsframe.data.shards import shard_name, write_index, write_shard
from ttsframe.errors import UserError
from ttsframe.pipeline import train as train_stage
from ttsframe.pipeline.runner import run_recipe

pytestmark = pytest.mark.integration
V, M = 20, 80  # vocabulary, mel bins
STAGE = [s.name for s in load_run_config("melle").stages].index("train_melle")


def write_split(shard_dir, split, count, seed, per_shard=10):
    """Learnable log-mel: a smooth ripple whose speed and level follow the first token."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        tokens = rng.integers(1, V, int(rng.integers(4, 12))).astype(np.int32)
        t = np.arange(int(rng.integers(10, 40)))[:, None]
        speed, level = 0.1 + 0.02 * tokens[0], -6 + 0.1 * tokens[0]
        mel = level + 2 * np.sin(speed * t + 0.1 * np.arange(M)) + 0.1 * rng.standard_normal((len(t), M))
        uid = f"{split}-{i:03d}"
        samples.append({"__key__": uid, "tokens.npy": tokens, "mel.npy": mel.astype(np.float16),
                        "meta.json": {"id": uid, "speaker": f"s{i % 3}", "frames": len(t)}})
    infos = [write_shard(shard_dir / shard_name(split, j // per_shard), samples[j:j + per_shard])
             for j in range(0, count, per_shard)]
    mel_config = MelConfig().to_dict()
    write_index(shard_dir, split, infos, feature="mel", vocab_size=V, frame_rate=MelConfig().frame_rate,
                codec={"name": "mel", "dim": M, "mel": mel_config}, n_codebooks=0, codebook_size=0)
    return samples


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    shard_dir = tmp_path_factory.mktemp("data") / "shards"
    shard_dir.mkdir()
    train_samples = write_split(shard_dir, "train", 40, seed=0)
    write_split(shard_dir, "dev", 8, seed=1)
    return shard_dir, train_samples


def make_exp(tmp_path, shards, name="exp"):
    exp = tmp_path / name
    shutil.copytree(shards[0], exp / "shards")
    return exp


def train(exp, *overrides, recipe="melle", stage=STAGE):
    base = [f"exp_dir={exp}", "trainer.logger=csv", "trainer.num_workers=0", "trainer.max_frames=600",
            "trainer.progress_bar=false", "trainer.num_sanity_val_steps=0", "model.optim.warmup_steps=2"]
    return run_recipe(load_run_config(recipe, [*base, *overrides]), stage, stage)[0]


def test_train_stage_writes_checkpoints_fits_stats_and_learns(tmp_path, shards):
    exp = make_exp(tmp_path, shards)
    summary = train(exp, "trainer.max_steps=30", "trainer.val_check_interval=10",
                    "trainer.checkpoint_every_n_steps=10", "model.optim.lr=3e-3")
    stage_dir = exp / "train_melle"
    for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "summary.json", "config.yaml"):
        assert (stage_dir / name).is_file(), name
    assert summary["global_step"] == 30 and summary["best_val_loss"] is not None

    checkpoint = torch.load(stage_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    hparams, weights = checkpoint["hyper_parameters"], checkpoint["state_dict"]
    assert hparams["family"] == "melle" and hparams["task"] == "melle"
    assert hparams["model_config"]["vocab_size"] == V and hparams["mel"] == MelConfig().to_dict()
    assert all(key.startswith("model.") for key in weights)
    frames = np.concatenate([s["mel.npy"].astype(np.float64) for s in shards[1]])  # every train utterance
    assert bool(weights["model.mel_stats_fitted"])
    np.testing.assert_allclose(weights["model.mel_mean"].numpy(), frames.mean(0), atol=1e-4)

    # The spectrogram regression falls on the dev split and in training. (The dev
    # stop term, weighted 100 on one end step per 10..40 frames, is too noisy to test in 30 steps.)
    rows = list(csv.DictReader(open(stage_dir / "logs" / "csv" / "version_0" / "metrics.csv")))
    val_reg = [float(r["val/reg"]) for r in rows if r.get("val/reg")]
    train_reg = [float(r["train/reg"]) for r in rows if r.get("train/reg")]
    assert len(val_reg) == 3 and val_reg[-1] < 0.75 * val_reg[0], val_reg
    assert train_reg[-1] < 0.75 * train_reg[0], train_reg


class Kill(L.Callback):
    """Stops the run like a crash right after optimizer step `step` (no checkpoint at that step)."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


def test_killed_run_resumes_to_the_same_weights(tmp_path, shards, monkeypatch, capsys):
    # Dropout and the latent noise must both replay exactly; validation runs in between.
    settings = ["trainer.max_steps=4", "trainer.checkpoint_every_n_steps=2", "trainer.val_check_interval=2",
                "model.dropout=0.1"]
    straight = make_exp(tmp_path, shards, "straight")
    train(straight, *settings)

    resumed = make_exp(tmp_path, shards, "resumed")
    build = train_stage.build_trainer
    monkeypatch.setattr(train_stage, "build_trainer", lambda *a, **k: build(*a[:3], [*a[3], Kill(3)]))
    with pytest.raises(RuntimeError, match="killed"):
        train(resumed, *settings)
    monkeypatch.setattr(train_stage, "build_trainer", build)
    capsys.readouterr()
    train(resumed, *settings)
    out = capsys.readouterr().out
    assert "resuming from" in out and "mel statistics" not in out  # kept from the checkpoint

    def weights(exp):
        return torch.load(exp / "train_melle/checkpoints/last.ckpt", weights_only=False)["state_dict"]

    a, b = weights(straight), weights(resumed)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert a.keys() == b.keys() and not different, different


def test_train_stage_checks_the_feature(tmp_path, shards):
    exp = make_exp(tmp_path, shards)
    with pytest.raises(UserError, match="hold `mel`, the model needs codec codes"):
        train(exp, "trainer.max_steps=1", recipe="valle", stage=2)
    assert json.loads((exp / "shards" / "train.index.json").read_text())["feature"] == "mel"
