"""The valle recipe's train stages on tiny hand-made shards: files, falling loss, exact resume, DDP."""

import json
import shutil

import lightning as L
import numpy as np
import pytest
import torch

from ttsframe.config import load_run_config
from ttsframe.data.shards import shard_name, write_index, write_shard
from ttsframe.pipeline import train as train_stage
from ttsframe.pipeline.runner import run_recipe

pytestmark = pytest.mark.integration
AR, NAR = 2, 3  # stage numbers in recipes/valle/recipe.yaml
K, N, V = 2, 32, 20  # codebooks, codebook size, vocabulary


def write_split(shard_dir, split, count, seed, per_shard=10):
    """Learnable samples: codebook k at frame t is (t * (k + 1) + first token) mod N."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        tokens = rng.integers(1, V, int(rng.integers(4, 12))).astype(np.int32)
        t = np.arange(int(rng.integers(10, 40)))
        codes = np.stack([(t * (k + 1) + int(tokens[0])) % N for k in range(K)]).astype(np.int16)  # (K, T)
        uid = f"{split}-{i:03d}"
        samples.append({"__key__": uid, "tokens.npy": tokens, "codes.npy": codes,
                        "meta.json": {"id": uid, "speaker": f"s{i % 3}", "frames": len(t)}})
    infos = [write_shard(shard_dir / shard_name(split, j // per_shard), samples[j:j + per_shard])
             for j in range(0, count, per_shard)]
    write_index(shard_dir, split, infos, feature="codes", codec={"name": "test"}, n_codebooks=K, codebook_size=N,
                frame_rate=50.0, vocab_size=V)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    shard_dir = tmp_path_factory.mktemp("data") / "shards"
    shard_dir.mkdir()
    write_split(shard_dir, "train", 40, seed=0)
    write_split(shard_dir, "dev", 8, seed=1)
    return shard_dir


def make_exp(tmp_path, shards, name="exp"):
    exp = tmp_path / name
    shutil.copytree(shards, exp / "shards")
    return exp


def train(exp, stage, *overrides):
    base = [f"exp_dir={exp}", "trainer.logger=csv", "trainer.num_workers=0", "trainer.max_frames=400",
            "trainer.progress_bar=false", "trainer.num_sanity_val_steps=0", "model.optim.warmup_steps=2"]
    return run_recipe(load_run_config("valle", [*base, *overrides]), stage, stage)[0]


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_train_stage_writes_checkpoints_summary_and_learns(tmp_path, shards):
    exp = make_exp(tmp_path, shards)
    summary = train(exp, AR, "trainer.max_steps=24", "trainer.val_check_interval=8",
                    "trainer.checkpoint_every_n_steps=10", "model.optim.lr=3e-3")
    stage_dir = exp / "train_ar"
    for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "summary.json", "config.yaml"):
        assert (stage_dir / name).is_file(), name
    assert summary["global_step"] == 24 and summary["best_val_loss"] is not None
    assert json.loads((stage_dir / "summary.json").read_text())["global_step"] == 24

    checkpoint = torch.load(stage_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 24  # the final step, though not a multiple of 10
    hparams = checkpoint["hyper_parameters"]
    assert hparams["family"] == "valle" and hparams["task"] == "valle_ar"
    assert hparams["model_config"]["codebook_size"] == N and hparams["model_config"]["vocab_size"] == V
    assert all(key.startswith("model.") for key in checkpoint["state_dict"])

    metrics = (stage_dir / "logs" / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    column = header.index("val/loss")
    val = [float(row.split(",")[column]) for row in metrics[1:] if row.split(",")[column]]
    assert len(val) == 3 and val[-1] < val[0] - 0.3, val

    assert train(exp, AR, "trainer.max_steps=24", "trainer.val_check_interval=8",
                 "trainer.checkpoint_every_n_steps=10", "model.optim.lr=3e-3")["skipped"]

    # --force starts over and keeps the old checkpoints aside.
    cfg = load_run_config("valle", [f"exp_dir={exp}", "trainer.logger=csv", "trainer.num_workers=0",
                                    "trainer.max_frames=400", "trainer.max_steps=2", "trainer.progress_bar=false"])
    assert run_recipe(cfg, AR, AR, force=True)[0]["global_step"] == 2
    assert torch.load(stage_dir / "checkpoints.1" / "last.ckpt", weights_only=False)["global_step"] == 24


def test_phoneme_pointer_from_the_command_line(tmp_path, shards):
    """`model.phoneme_pointer=true` reaches the AR (its terms logged), `model.loss` both train stages."""
    exp = make_exp(tmp_path, shards)
    settings = ["trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
                "model.phoneme_pointer=true", "model.advance_grad_scale=0.1", "model.loss.advance_weight=0.5"]
    train(exp, AR, *settings)
    checkpoint = torch.load(exp / "train_ar/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["model_config"]["phoneme_pointer"] and hparams["model_config"]["advance_grad_scale"] == 0.1
    assert hparams["loss"] == {"advance_weight": 0.5} and "model.advance_head.0.weight" in checkpoint["state_dict"]
    header = (exp / "train_ar/logs/csv/version_0/metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/advance", "train/aligner", "grad/advance", "val/advance_accuracy", "val/ce"} <= set(header), header
    assert train(exp, NAR, *settings)["global_step"] == 4  # the NAR takes the same settings and has no pointer


class Kill(L.Callback):
    """Stops the run like a crash right after optimizer step `step` (no checkpoint at that step)."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


def test_killed_run_resumes_to_the_same_weights(tmp_path, shards, monkeypatch, capsys):
    # Dropout on and the NAR's random plans: both must replay exactly. Validation runs in between.
    settings = ["trainer.max_steps=6", "trainer.checkpoint_every_n_steps=3", "trainer.val_check_interval=2",
                "model.dropout=0.1", "trainer.log_every_n_steps=1", "trainer.snapshot_every_n_steps=3"]
    straight = make_exp(tmp_path, shards, "straight")
    train(straight, NAR, *settings)

    resumed = make_exp(tmp_path, shards, "resumed")
    build = train_stage.build_trainer
    monkeypatch.setattr(train_stage, "build_trainer", lambda *a, **k: build(*a[:3], [*a[3], Kill(4)]))
    with pytest.raises(RuntimeError, match="killed"):
        train(resumed, NAR, *settings)
    at_step3 = torch.load(resumed / "train_nar/checkpoints/last.ckpt", weights_only=False)
    assert at_step3["global_step"] == 3
    monkeypatch.setattr(train_stage, "build_trainer", build)
    capsys.readouterr()
    train(resumed, NAR, *settings)
    out = capsys.readouterr().out
    assert "resuming from" in out and "(step 3)" in out and "skipping the 3 training batches" in out

    a, b = weights(straight / "train_nar/checkpoints/last.ckpt"), weights(resumed / "train_nar/checkpoints/last.ckpt")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different
    assert any(not torch.equal(at_step3["state_dict"][k], b[k]) for k in b)  # steps 4..6 did train
    # The training curves continue from the checkpoint: the same points, none twice, none missing.
    curves = [json.loads((exp / "train_nar" / "curves.json").read_text()) for exp in (straight, resumed)]
    assert curves[0] == curves[1]
    assert [p["step"] for p in curves[0]["train"]] == [1, 2, 3, 4, 5, 6]
    assert [p["step"] for p in curves[0]["val"]] == [2, 4, 6] and "val/loss" in curves[0]["val"][0]
    # Kept snapshots (at last.ckpt's interval: their states must not collide): step 3 and step 6 in both runs.
    for exp in (straight, resumed):
        kept = sorted(p.name for p in (exp / "train_nar/checkpoints").glob("step*.ckpt"))
        assert kept == ["step3.ckpt", "step6.ckpt"], kept
        assert torch.load(exp / "train_nar/checkpoints/step3.ckpt", weights_only=False)["global_step"] == 3
    assert all(torch.equal(v, b[k]) for k, v in weights(resumed / "train_nar/checkpoints/step6.ckpt").items())


def test_ddp_two_cpu_processes(tmp_path, shards):
    exp = make_exp(tmp_path, shards)
    summary = train(exp, AR, "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn",
                    "trainer.max_steps=3", "trainer.val_check_interval=2", "trainer.checkpoint_every_n_steps=2")
    assert summary["world_size"] == 2 and summary["global_step"] == 3
    checkpoint = torch.load(exp / "train_ar/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 3
    assert checkpoint["callbacks"]["DataPosition"] == {"batches": 3}  # per rank

