"""MELLE Lightning task: training steps, checkpoint contract, seeded noise, mel statistics."""

import lightning as L
import numpy as np
import pytest
import torch

from ttsframe.data.collate import collate
from ttsframe.data.shards import shard_name, write_index, write_shard
from ttsframe.models.melle.task import MelleTask, mel_statistics, model_config

VOCAB, M = 12, 80
CONFIG = model_config("melle_tiny", vocab_size=VOCAB, d_model=32, ffn_dim=64)
OPTIM = {"lr": 1e-2, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0}


def samples(count=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        frames = int(torch.randint(6, 12, (), generator=g))
        tokens = torch.randint(1, VOCAB, (int(torch.randint(3, 7, (), generator=g)),), generator=g)
        mel = torch.randn(frames, M, generator=g) * 2 - 5  # (T, M)
        out.append({"id": f"u{i}", "speaker": "s", "tokens": tokens, "mel": mel, "frames": frames})
    return out


class Batches:
    """An iterable of ready batches (a plain list would read as several dataloaders)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def fit(task, steps=3):
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    task.model.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    trainer.fit(task, train_dataloaders=Batches([collate(samples(seed=i)) for i in range(steps)]))
    return trainer


def test_training_steps_update_every_weight_and_log():
    torch.manual_seed(0)
    task = MelleTask(model_config=CONFIG, optim=OPTIM, seed=1)
    before = {k: v.clone() for k, v in task.model.named_parameters()}
    trainer = fit(task)
    assert trainer.global_step == 3
    unchanged = [k for k, v in task.model.named_parameters() if torch.equal(before[k], v)]
    assert not unchanged, unchanged
    logged = set(trainer.callback_metrics)
    assert {"train/loss", "train/reg", "train/kl", "train/flux", "train/stop", "train/lr"} <= logged


def test_checkpoint_contract(tmp_path):
    task = MelleTask(model_config=CONFIG, optim=OPTIM, seed=1, loss={"flux_weight": 0.25})
    trainer = fit(task, steps=1)
    trainer.save_checkpoint(tmp_path / "melle.ckpt")
    checkpoint = torch.load(tmp_path / "melle.ckpt", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["family"] == "melle" and hparams["task"] == "melle" and hparams["model_config"] == CONFIG
    assert hparams["optim"] == OPTIM and hparams["seed"] == 1 and hparams["loss"] == {"flux_weight": 0.25}
    assert set(checkpoint["state_dict"]) == {f"model.{k}" for k in task.model.state_dict()}
    assert "model.mel_mean" in checkpoint["state_dict"]
    loaded = MelleTask.load_from_checkpoint(tmp_path / "melle.ckpt")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in task.state_dict().items())
    assert loaded.loss_config.flux_weight == 0.25 and bool(loaded.model.mel_stats_fitted)
    assert (MelleTask.FAMILY, MelleTask.TASK, MelleTask.FEATURE) == ("melle", "melle", "mel")


def test_noise_depends_on_seed_and_step_not_on_global_rng():
    tasks = [MelleTask(model_config=CONFIG, seed=s) for s in (1, 1, 2)]
    for task in tasks:
        task.load_state_dict(tasks[0].state_dict())
        task.eval()  # no dropout: only the latent noise differs
    batch = collate(samples())
    means = []
    for task in tasks:
        torch.rand(7)  # global RNG use in between changes nothing
        means.append(task.predict_mel(batch, "train", 0).coarse)
    assert torch.equal(means[0], means[1]) and not torch.equal(means[0], means[2])
    train, val = tasks[0].noise_generator("train", 0), tasks[0].noise_generator("val", 0)
    assert not torch.equal(torch.rand(4, generator=train), torch.rand(4, generator=val))


def test_mel_statistics_from_shards(tmp_path):
    items = samples(count=5)
    shard = [{"__key__": s["id"], "tokens.npy": s["tokens"].numpy().astype(np.int32),
              "mel.npy": s["mel"].numpy().astype(np.float16), "meta.json": {"id": s["id"], "speaker": "s"}}
             for s in items]
    write_index(tmp_path, "train", [write_shard(tmp_path / shard_name("train", 0), shard)], feature="mel",
                codec={"name": "mel", "dim": M}, n_codebooks=0, codebook_size=0, frame_rate=86.0, vocab_size=VOCAB)
    task = MelleTask(model_config=CONFIG, stats_utterances=3)
    task.fit_mel_stats(tmp_path, "train")
    all_frames = torch.cat([torch.from_numpy(s["mel.npy"].astype(np.float32)) for s in shard[:3]])
    torch.testing.assert_close(task.model.mel_mean, all_frames.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(task.model.mel_std, all_frames.std(0, unbiased=False), atol=1e-4, rtol=1e-4)
    assert bool(task.model.mel_stats_fitted)
    _, std, frames = mel_statistics([torch.full((4, M), -11.5)])
    assert frames == 4 and (std == 0.1).all()  # a constant bin gets the floor, not 0


def test_model_config_rejects_codes_and_unknown_overrides():
    with pytest.raises(ValueError, match="codec=mel"):
        model_config("melle_tiny", VOCAB, n_codebooks=8, codebook_size=1024)
    with pytest.raises(ValueError, match="valid: d_model"):
        model_config("melle_tiny", VOCAB, bogus=1)


def test_validation_logs_text_reliance():
    task = MelleTask(CONFIG, optim=OPTIM)
    task.model.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    [metrics] = trainer.validate(task, Batches([collate(samples())]), verbose=False)
    assert metrics["val/text_reliance"] == pytest.approx(metrics["val/reg_other_text"] - metrics["val/reg"], abs=1e-6)
    assert metrics["val/text_reliance"] != 0.0  # the random model's regression moves with its text


def test_a_pointer_model_trains_and_logs_its_terms_and_their_gradients():
    torch.manual_seed(0)
    config = model_config("melle_tiny", vocab_size=VOCAB, d_model=32, ffn_dim=64, reduction_factor=2,
                          phoneme_pointer=True, advance_grad_scale=0.02)
    assert config["phoneme_pointer"] and config["advance_grad_scale"] == 0.02
    task = MelleTask(model_config=config, optim=OPTIM, seed=1, loss={"advance_weight": 0.5})
    before = {k: v.clone() for k, v in task.model.named_parameters()}
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, log_every_n_steps=1,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    task.model.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    trainer.fit(task, train_dataloaders=Batches([collate(samples(seed=i)) for i in range(2)]))
    unchanged = [k for k, v in task.model.named_parameters() if torch.equal(before[k], v)]
    assert not unchanged, unchanged
    logged = set(trainer.callback_metrics)
    assert {"train/advance", "train/aligner", "grad/advance", "grad/aligner", "grad/reg"} <= logged, logged
