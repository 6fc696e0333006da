"""Lightning training tasks of VALL-E: `ValleARTask` (codebook 0) and `ValleNARTask` (codebooks 1..K-1).

Each task holds its model as `self.model` and trains it with `loss.valle_loss` (`codebook_loss`,
plus an AR phoneme pointer's terms); the model code knows nothing of Lightning.

Checkpoint contract (synthesis and release read it): `state_dict` keys are `model.<ValleAR or
ValleNAR parameter name>`; `hyper_parameters` holds `model_config` (the `ValleConfig` fields),
`optim`, `seed`, `loss` (`ValleLossConfig` fields or None for the defaults), `family` ("valle") and
`task` ("valle_ar" | "valle_nar").

Every `trainer.log_every_n_steps` steps a task logs its loss terms' gradient norms on the
transformer's last block (`grad/ce`, and for an AR with a phoneme pointer `grad/advance`,
`grad/aligner`: `ttsframe.training.grad_norms`).
"""

from __future__ import annotations

import dataclasses
import inspect

import lightning as L
import torch

from ttsframe.data.collate import Batch
from ttsframe.training.grad_norms import last_layer, log_term_gradients
from ttsframe.models.valle.loss import CodebookPrediction, ValleLossConfig, valle_loss
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.models.valle.presets import get_preset
from ttsframe.models.valle.samples import ar_samples, nar_samples
from ttsframe.training.optim import build_optimizer
from ttsframe.training.resume import step_generator
from ttsframe.training.task_logging import log_text_reliance

FAMILY = "valle"
ARCH_OVERRIDES = ("d_model", "n_layers", "n_heads", "ffn_dim", "dropout", "input_noise", "phoneme_pointer",
                  "advance_grad_scale")


def model_config(preset: str, vocab_size: int, n_codebooks: int, codebook_size: int, **overrides) -> dict:
    """`ValleConfig` fields of a preset for this data, with the non-None `overrides` applied."""
    unknown = set(overrides) - set(ARCH_OVERRIDES)
    if unknown:
        raise ValueError(f"unknown VALL-E overrides {sorted(unknown)}; valid: {', '.join(ARCH_OVERRIDES)}")
    config = get_preset(preset, vocab_size, n_codebooks, codebook_size)
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return dataclasses.asdict(config)


def log_metrics(task: L.LightningModule, split: str, metrics: dict[str, torch.Tensor],
                prediction: CodebookPrediction) -> dict:
    """Loss and accuracies: per step in training; in validation averaged over the predicted
    positions of the whole pass and synced over ranks once, at its end. Returns the `log` options."""
    train = split == "train"
    weight = 1 if train else max(int(prediction.mask.sum()), 1)  # (no GPU sync in training)
    options = dict(on_step=train, on_epoch=not train, batch_size=weight, sync_dist=not train)
    task.log(f"{split}/loss", metrics["loss"].detach(), prog_bar=True, **options)
    task.log_dict({f"{split}/{k}": v.detach() for k, v in metrics.items() if k != "loss"}, **options)
    if train:
        task.log("train/lr", task.optimizers().param_groups[0]["lr"], on_step=True, batch_size=1)
    return options


def init_task(task: L.LightningModule, name: str) -> ValleConfig:
    """Saves the constructor arguments plus `family` and `task` as hyperparameters, sets
    `task.loss_config` from the `loss` argument, and returns the model config."""
    task.save_hyperparameters(frame=inspect.currentframe().f_back)  # the task's __init__ arguments
    task.hparams["family"], task.hparams["task"] = FAMILY, name
    loss = task.hparams.get("loss") or {}
    valid = {f.name for f in dataclasses.fields(ValleLossConfig)}
    if set(loss) - valid:
        raise ValueError(f"unknown VALL-E loss settings {sorted(set(loss) - valid)}; valid: {', '.join(sorted(valid))}")
    task.loss_config = ValleLossConfig(**loss)
    return ValleConfig(**task.hparams.model_config)


def train_or_val_step(task: L.LightningModule, prediction: CodebookPrediction, split: str) -> torch.Tensor:
    metrics = valle_loss(prediction, task.loss_config)
    log_metrics(task, split, metrics, prediction)
    if split == "train":  # each weighted term's size on the last block, comparable with the other families'
        c = task.loss_config
        terms = {"ce": metrics.get("ce", metrics["loss"])}
        if "advance" in metrics:  # an AR with a phoneme pointer
            terms.update(advance=c.advance_weight * metrics["advance"], aligner=c.aligner_weight * metrics["aligner"])
        log_term_gradients(task, terms, last_layer(task.model.transformer).parameters())
    return metrics["loss"]


def optimizers(task: L.LightningModule) -> dict:
    """AdamW + schedule; the cosine/linear horizon defaults to the trainer's max_steps."""
    max_steps = task.trainer.max_steps if task._trainer is not None else -1
    return build_optimizer(task.model, task.hparams.optim or {}, max(max_steps, 1))


class ValleARTask(L.LightningModule):
    """Trains `ValleAR`: next-code prediction over codebook 0, then EOS.

    Args:
        model_config: `ValleConfig` fields (`model_config()` gives a preset's).
        optim: `OptimConfig` fields.
        seed: the run's seed (the AR draws nothing itself; kept for uniform checkpoints).
        loss: `ValleLossConfig` fields (the phoneme pointer's weights); None keeps the defaults.
    """

    FAMILY, TASK = FAMILY, "valle_ar"
    build_model_config = staticmethod(model_config)

    def __init__(self, model_config: dict, optim: dict | None = None, seed: int = 0, loss: dict | None = None):
        super().__init__()
        self.model = ValleAR(init_task(self, self.TASK))

    def predict_codes(self, batch: Batch, text: torch.Tensor | None = None,
                      text_lengths: torch.Tensor | None = None) -> CodebookPrediction:
        """Teacher-forced logits; `text` (B, L) / `text_lengths` (B,) replace the batch's phonemes."""
        return self.model(batch.tokens if text is None else text,
                          batch.token_lengths if text_lengths is None else text_lengths,
                          batch.codes, batch.frame_lengths)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return train_or_val_step(self, self.predict_codes(batch), "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        prediction = self.predict_codes(batch)
        metrics = valle_loss(prediction, self.loss_config)
        options = log_metrics(self, "val", metrics, prediction)
        term = "ce" if "ce" in metrics else "loss"  # the codes' cross-entropy (a pointer adds its terms)

        def loss_with(text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
            return valle_loss(self.predict_codes(batch, text, text_lengths), self.loss_config)[term]

        log_text_reliance(self, batch, metrics[term], loss_with, options, term=term)

    def sample_features(self, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
        """Audio samples of validation (see `ttsframe.training.audio_samples`)."""
        return ar_samples(self.model, batch, max_items)

    def configure_optimizers(self) -> dict:
        return optimizers(self)


class ValleNARTask(L.LightningModule):
    """Trains `ValleNAR`: per row, a random acoustic prompt and codebook stage (the "plan").

    The plan comes from a generator seeded by (seed, rank, step, micro-batch) in training and
    by (seed, rank, batch index) in validation: it does not depend on the run's history (exact
    resume), and every validation pass sees the same plan.

    Args:
        model_config: `ValleConfig` fields; needs `n_codebooks >= 2`.
        optim: `OptimConfig` fields.
        seed: base seed of the plan.
        loss: `ValleLossConfig` fields; checked, unused (the NAR has no pointer terms).
    """

    FAMILY, TASK = FAMILY, "valle_nar"
    build_model_config = staticmethod(model_config)

    def __init__(self, model_config: dict, optim: dict | None = None, seed: int = 0, loss: dict | None = None):
        super().__init__()
        self.model = ValleNAR(init_task(self, self.TASK))

    def plan_generator(self, split: str, batch_idx: int) -> torch.Generator:
        return step_generator(self, split, batch_idx)

    def predict_codes(self, batch: Batch, split: str, batch_idx: int) -> CodebookPrediction:
        generator = self.plan_generator(split, batch_idx)
        return self.model(batch.tokens, batch.token_lengths, batch.codes, batch.frame_lengths, generator=generator)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return train_or_val_step(self, self.predict_codes(batch, "train", batch_idx), "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        train_or_val_step(self, self.predict_codes(batch, "val", batch_idx), "val")

    def sample_features(self, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
        """Audio samples of validation (see `ttsframe.training.audio_samples`)."""
        return nar_samples(self.model, batch, max_items)

    def configure_optimizers(self) -> dict:
        return optimizers(self)

