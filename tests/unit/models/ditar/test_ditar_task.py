"""DiTAR Lightning task: training and validation steps with their logged terms, text reliance,
the checkpoint contract, seeded draws, and the model config of the train stage."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from ttsframe.data.collate import collate
from ttsframe.errors import ConfigError
from ttsframe.models.ditar.task import DiTARTask, model_config

VOCAB, M = 12, 16
CONFIG = model_config("ditar_tiny", vocab_size=VOCAB, index={"codec": {"name": "mel", "dim": M}})
OPTIM = {"lr": 1e-2, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0}


def batch(seed: int = 0, same_text: bool = False):
    """Three utterances of 6-13 random log-mel frames (level -5, spread 2); their texts differ
    unless `same_text`."""
    g = torch.Generator().manual_seed(seed)
    lengths, texts = torch.randint(6, 14, (3,), generator=g).tolist(), torch.randint(1, VOCAB, (3, 5), generator=g)
    texts = texts[:1].expand(3, -1) if same_text else texts
    return collate([{"id": f"u{i}", "speaker": "s", "tokens": texts[i][: 5 if same_text else 3 + i],
                     "mel": torch.randn(n, M, generator=g) * 2 - 5, "frames": n} for i, n in enumerate(lengths)])


def loader(*batches):
    """Ready batches as a loader (batch_size None: each item is one batch)."""
    return DataLoader(list(batches), batch_size=None)


def trainer(steps=3):
    return L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)


def make_task(config=CONFIG, **kwargs):
    torch.manual_seed(0)
    task = DiTARTask(model_config=config, optim=OPTIM, seed=1, **kwargs)
    task.model.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    return task


def test_training_steps_update_the_weights_and_log_every_term():
    task = make_task()
    before = {k: v.clone() for k, v in task.model.named_parameters()}
    fit = trainer()
    fit.fit(task, train_dataloaders=loader(*(batch(seed=i) for i in range(3))))
    assert fit.global_step == 3
    unchanged = [k for k, v in task.model.named_parameters() if torch.equal(before[k], v)]
    assert not unchanged, unchanged
    logged = fit.callback_metrics
    assert {"train/loss", "train/diffusion", "train/stop", "train/stop_accuracy", "train/lr"} <= set(logged)
    assert all(torch.isfinite(logged[k]) for k in ("train/loss", "train/diffusion", "train/stop"))


def test_validation_logs_the_terms_and_text_reliance():
    task = make_task()
    [metrics] = trainer().validate(task, loader(batch()), verbose=False)
    assert {"val/loss", "val/diffusion", "val/stop", "val/stop_accuracy", "val/diffusion_other_text",
            "val/text_reliance"} <= set(metrics)
    assert metrics["val/text_reliance"] == pytest.approx(metrics["val/diffusion_other_text"] - metrics["val/diffusion"])
    # rows that all share their text: nothing to compare with, nothing logged
    [same] = trainer().validate(task, loader(batch(same_text=True)), verbose=False)
    assert "val/text_reliance" not in same and "val/diffusion" in same
    assert "val/prior_text_reliance" not in metrics  # no regression prior


def test_with_a_regression_prior_validation_logs_its_text_reliance_too():
    task = make_task({**CONFIG, "regression_prior": True})
    [metrics] = trainer().validate(task, loader(batch()), verbose=False)
    assert metrics["val/prior_text_reliance"] == pytest.approx(metrics["val/prior_other_text"] - metrics["val/prior"])
    assert metrics["val/prior_other_text"] != pytest.approx(metrics["val/prior"])  # the prior reads the text


def test_checkpoint_contract(tmp_path):
    task = make_task(loss={"stop_weight": 0.5})
    fit = trainer(steps=1)
    fit.fit(task, train_dataloaders=loader(batch()))
    fit.save_checkpoint(tmp_path / "ditar.ckpt")
    checkpoint = torch.load(tmp_path / "ditar.ckpt", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["family"] == "ditar" and hparams["task"] == "ditar" and hparams["model_config"] == CONFIG
    assert hparams["optim"] == OPTIM and hparams["seed"] == 1 and hparams["loss"] == {"stop_weight": 0.5}
    assert {"mel", "stats_utterances"} <= set(hparams)
    assert set(checkpoint["state_dict"]) == {f"model.{k}" for k in task.model.state_dict()}
    loaded = DiTARTask.load_from_checkpoint(tmp_path / "ditar.ckpt")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in task.state_dict().items())
    assert loaded.loss_config.stop_weight == 0.5 and bool(loaded.model.mel_stats_fitted)
    assert (DiTARTask.FAMILY, DiTARTask.TASK, DiTARTask.FEATURE) == ("ditar", "ditar", "mel")


def test_draws_depend_on_seed_and_step_not_on_global_rng():
    tasks = [DiTARTask(model_config=CONFIG, seed=s) for s in (1, 1, 2)]
    rows = batch()
    v = []
    for task in tasks:
        task.load_state_dict(tasks[0].state_dict())
        task.eval()  # no dropout, no CFG drops: only the diffusion draws differ
        torch.rand(7)  # global RNG use in between changes nothing
        v.append(task.predict(rows, "train", 0).v_target)
    assert torch.equal(v[0], v[1]) and not torch.equal(v[0], v[2])
    assert not torch.equal(v[0], tasks[0].predict(rows, "val", 0).v_target)


def test_model_config_reads_the_mel_bins_and_checks_overrides():
    assert CONFIG["n_mels"] == M and model_config("ditar_tiny", VOCAB)["n_mels"] == 80
    config = model_config("ditar_cpu", VOCAB, patch_size=2, history=0, d_model=64, n_heads=None)
    assert (config["patch_size"], config["history"], config["d_model"], config["n_heads"]) == (2, 0, 64, 4)
    with pytest.raises(ValueError, match="codec=mel"):
        model_config("ditar_tiny", VOCAB, n_codebooks=8, codebook_size=1024)
    with pytest.raises(ValueError, match="unknown DiTAR overrides \\['reduction_factor'\\]; valid: d_model"):
        model_config("ditar_tiny", VOCAB, reduction_factor=2)
    with pytest.raises(ConfigError, match="model.loss: unknown key\\(s\\) \\['kl_weight'\\]; valid keys: advance_weight, aligner_weight, .*diffusion"):
        DiTARTask(model_config=CONFIG, loss={"kl_weight": 1.0})
