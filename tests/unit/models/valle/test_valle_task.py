"""VALL-E Lightning tasks: a training step moves the weights, the checkpoint contract, NAR plans."""

import lightning as L
import pytest
import torch

from ttsframe.data.collate import collate
from ttsframe.models.valle.task import ValleARTask, ValleNARTask, model_config

CONFIG = model_config("valle_tiny", vocab_size=12, n_codebooks=3, codebook_size=16, d_model=32, ffn_dim=64)
OPTIM = {"lr": 1e-2, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0}


def batch(seed=0, size=3):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(size):
        frames = int(torch.randint(6, 12, (), generator=g))
        tokens = torch.randint(1, 12, (int(torch.randint(3, 7, (), generator=g)),), generator=g)
        codes = torch.randint(0, 16, (3, frames), generator=g)  # (K, T)
        samples.append({"id": f"u{i}", "speaker": "s", "tokens": tokens, "codes": codes, "frames": frames})
    return collate(samples)


class Batches:
    """An iterable of ready batches (a plain list would read as several dataloaders)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def fit(task, steps=3):
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, train_dataloaders=Batches([batch(i) for i in range(steps)]))
    return trainer


def test_training_steps_update_every_weight_and_log(tmp_path):
    for cls in (ValleARTask, ValleNARTask):
        torch.manual_seed(0)
        task = cls(model_config=CONFIG, optim=OPTIM, seed=1)
        before = {k: v.clone() for k, v in task.state_dict().items()}
        trainer = fit(task)
        after = task.state_dict()
        assert trainer.global_step == 3
        assert all(not torch.equal(before[k], after[k]) for k in before), cls.__name__
        logged = set(trainer.callback_metrics)
        assert {"train/loss", "train/accuracy_top1", "train/accuracy_top10", "train/lr"} <= logged


def test_checkpoint_contract(tmp_path):
    task = ValleNARTask(model_config=CONFIG, optim=OPTIM, seed=1)
    trainer = fit(task, steps=1)
    trainer.save_checkpoint(tmp_path / "nar.ckpt")
    checkpoint = torch.load(tmp_path / "nar.ckpt", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["family"] == "valle" and hparams["task"] == "valle_nar" and hparams["model_config"] == CONFIG
    assert set(checkpoint["state_dict"]) == {f"model.{k}" for k in task.model.state_dict()}
    loaded = ValleNARTask.load_from_checkpoint(tmp_path / "nar.ckpt")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in task.state_dict().items())


def test_nar_plan_depends_on_seed_and_step_not_on_global_rng():
    tasks = [ValleNARTask(model_config=CONFIG, seed=s) for s in (1, 1, 2)]
    b = batch(size=16)
    plans = []
    for task in tasks:
        torch.rand(7)  # global RNG use in between changes nothing
        plans.append(task.predict_codes(b, "train", 0).stages)
    assert torch.equal(plans[0], plans[1]) and not torch.equal(plans[0], plans[2])
    train, val = tasks[0].plan_generator("train", 0), tasks[0].plan_generator("val", 0)
    assert not torch.equal(torch.rand(4, generator=train), torch.rand(4, generator=val))


def test_ar_validation_logs_text_reliance():
    task = ValleARTask(CONFIG, optim=OPTIM)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    [metrics] = trainer.validate(task, Batches([batch()]), verbose=False)
    assert metrics["val/text_reliance"] == pytest.approx(metrics["val/loss_other_text"] - metrics["val/loss"], abs=1e-6)
    assert metrics["val/text_reliance"] != 0.0


def test_a_pointer_ar_trains_and_logs_its_terms_and_their_gradients():
    config = model_config("valle_tiny", vocab_size=12, n_codebooks=3, codebook_size=16, d_model=32, ffn_dim=64,
                          phoneme_pointer=True, advance_grad_scale=0.1)
    assert config["phoneme_pointer"] and config["advance_grad_scale"] == 0.1
    torch.manual_seed(0)
    task = ValleARTask(model_config=config, optim=OPTIM, seed=1, loss={"advance_weight": 0.5})
    assert task.loss_config.advance_weight == 0.5 and task.hparams.loss == {"advance_weight": 0.5}
    before = {k: v.clone() for k, v in task.model.named_parameters()}
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, log_every_n_steps=1,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, train_dataloaders=Batches([batch(i) for i in range(2)]))
    unchanged = [k for k, v in task.model.named_parameters() if torch.equal(before[k], v)]
    assert not unchanged, unchanged
    logged = set(trainer.callback_metrics)
    assert {"train/advance", "train/aligner", "train/ce", "grad/advance", "grad/aligner", "grad/ce"} <= logged, logged
    [metrics] = trainer.validate(task, Batches([batch(7)]), verbose=False)
    assert {"val/advance_accuracy", "val/ce", "val/ce_other_text", "val/text_reliance"} <= set(metrics), metrics
    assert metrics["val/text_reliance"] == pytest.approx(metrics["val/ce_other_text"] - metrics["val/ce"], abs=1e-6)


def test_loss_settings_are_checked_and_the_nar_takes_them_too():
    with pytest.raises(ValueError, match="valid: advance_weight, aligner_weight"):
        ValleARTask(CONFIG, loss={"bogus": 1.0})
    nar = ValleNARTask(CONFIG, loss={"aligner_weight": 0.5})  # one model.loss for both train stages
    assert nar.loss_config.aligner_weight == 0.5
    with pytest.raises(ValueError, match="valid: d_model"):
        model_config("valle_tiny", 12, 3, 16, max_advance=3)


def test_a_pointer_ar_renders_validation_samples():
    config = model_config("valle_tiny", vocab_size=12, n_codebooks=3, codebook_size=16, d_model=32, ffn_dim=64,
                          phoneme_pointer=True)
    torch.manual_seed(0)
    task = ValleARTask(model_config=config, optim=OPTIM)
    b = batch(size=2)
    items = task.sample_features(b, max_items=2)
    assert [name for name, _ in items] == ["u0_truth_codebook0", "u0_ar", "u1_truth_codebook0", "u1_ar"]
    for (_, truth), (_, sample) in zip(items[::2], items[1::2]):
        prompt = max(1, int(truth.shape[1] / 3))
        assert sample.shape[0] == 1 and torch.equal(sample[0, :prompt], truth[0, :prompt])
        assert sample.shape[1] > prompt
