"""Lightning training task of DiTAR: `DiTARTask` trains `DiTAR` with `loss.ditar_loss`.

Checkpoint contract (synthesis and release read it): `state_dict` keys are `model.<DiTAR
parameter or buffer name>` (the buffers `mel_mean`, `mel_std`, `mel_stats_fitted` included);
`hyper_parameters` holds `model_config` (the `DiTARConfig` fields), `optim`, `seed`, `loss`
(`DiTARLossConfig` fields or None for the defaults), `mel` (the data's `MelConfig` fields, set
when training starts on shards), `stats_utterances`, `family` ("ditar") and `task` ("ditar").

Mel statistics (as MELLE's): before the first step of a fresh run (`on_fit_start`, after any
checkpoint restore) the per-bin mean and std of the log-mel are computed from the first
``stats_utterances`` utterances of the training shards in index order, identical on every rank
and independent of the seed; a resumed run keeps the ones in its checkpoint.

Determinism: the diffusion times, the noise and the CFG drops come from a generator seeded by
(seed, rank, step, micro-batch) in training and (seed, rank, batch index) in validation, so exact
resume holds and every validation pass sees the same draws.

Every `trainer.log_every_n_steps` steps it logs each weighted loss term's gradient norm on the
LM's last block (`grad/diffusion`, `grad/stop`, ...: `ttsframe.training.grad_norms`).

Validation also scores text reliance (`ttsframe.training.task_logging`): the diffusion loss with
another row's text, same draws, minus the loss with the row's own (`val/text_reliance`); with a
regression prior, the same for the prior's error (`val/prior_text_reliance`).
"""

from __future__ import annotations

import dataclasses

import lightning as L
import torch

from ttsframe.codecs import to_dataclass
from ttsframe.data.collate import Batch
from ttsframe.models.ditar.loss import DiTARLossConfig, DiTARPrediction, ditar_loss
from ttsframe.models.ditar.model import DiTAR, DiTARConfig
from ttsframe.models.ditar.presets import get_preset
from ttsframe.models.ditar.samples import ditar_samples
from ttsframe.training.mel_stats import check_mel_data, start_mel_training
from ttsframe.training.grad_norms import last_layer, log_term_gradients
from ttsframe.training.optim import task_optimizer
from ttsframe.training.resume import step_generator
from ttsframe.training.task_logging import log_losses, log_text_reliance

FAMILY = "ditar"
# model.<name> overrides of the train stage; d_model .. ffn_dim size the LM (LocEnc and LocDiT keep the preset's)
ARCH_OVERRIDES = ("d_model", "n_layers", "n_heads", "ffn_dim", "dropout", "patch_size", "history", "history_dropout",
                  "input_dropout",
                  "alignment_heads", "alignment_layer", "alignment_target", "phoneme_pointer", "advance_grad_scale",
                  "time_logit_mean", "regression_prior", "self_feed", "duration_plan", "pointer_context")


def model_config(preset: str, vocab_size: int, n_codebooks: int | None = 0, codebook_size: int | None = 0,
                 index: dict | None = None, **overrides) -> dict:
    """`DiTARConfig` fields of a preset for the shards' `index` (its mel bins), with the non-None
    `overrides` applied.

    The codebook arguments exist for the train stage's common call; DiTAR reads mel frames, so
    they must be 0 or None.
    """
    if n_codebooks:
        raise ValueError(f"DiTAR models mel frames, but the data has {n_codebooks} codebooks (use codec=mel)")
    unknown = set(overrides) - set(ARCH_OVERRIDES)
    if unknown:
        raise ValueError(f"unknown DiTAR overrides {sorted(unknown)}; valid: {', '.join(ARCH_OVERRIDES)}")
    codec = (index or {}).get("codec") or {}
    n_mels = (codec.get("mel") or {}).get("n_mels", codec.get("dim", 80))
    config = get_preset(preset, vocab_size, int(n_mels))
    return dataclasses.asdict(dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None}))


class DiTARTask(L.LightningModule):
    """Trains `DiTAR`: the LM teacher-forced over patches, LocDiT's v-prediction and the stop loss.

    Args (the checkpoint's `hyper_parameters`, see the module docstring):
        model_config: `DiTARConfig` fields, as `model_config()` gives them.
        optim, seed: `OptimConfig` fields; the base seed of the diffusion draws.
        loss: `DiTARLossConfig` fields (None: its defaults).
        mel, stats_utterances: the shards' `MelConfig` fields (set when training starts); how many
            training utterances the mel statistics come from.
    """

    FAMILY, TASK, FEATURE = FAMILY, "ditar", "mel"
    build_model_config = staticmethod(model_config)

    def __init__(self, model_config: dict, optim: dict | None = None, seed: int = 0, loss: dict | None = None,
                 mel: dict | None = None, stats_utterances: int = 1000):
        super().__init__()
        self.save_hyperparameters()
        self.hparams["family"], self.hparams["task"] = FAMILY, self.TASK
        self.model = DiTAR(DiTARConfig(**model_config))
        self.loss_config = to_dataclass(DiTARLossConfig, loss or {}, "model.loss")  # unknown keys fail
        self.model.stop_head.set_pos_weight(self.loss_config.stop_pos_weight)  # its decision rule

    def on_fit_start(self) -> None:
        start_mel_training(self)  # checks the shards, fits the mel statistics of a fresh run

    def check_data(self, data) -> None:
        """Fails unless the shards hold mel frames of the model's bins; records their mel config."""
        check_mel_data(self, data, "DiTAR")

    # -- steps -----------------------------------------------------------------------------
    def predict(self, batch: Batch, split: str, batch_idx: int, text: torch.Tensor | None = None,
                text_lengths: torch.Tensor | None = None) -> DiTARPrediction:
        """The model's teacher-forced prediction; `text` (B, L) / `text_lengths` (B,) replace the
        batch's phonemes. The same (split, batch_idx) gives the same draws."""
        generator = step_generator(self, split, batch_idx)
        return self.model(batch.tokens if text is None else text,
                          batch.token_lengths if text_lengths is None else text_lengths,
                          batch.mel, batch.frame_lengths, generator=generator)

    def step(self, batch: Batch, batch_idx: int, split: str) -> tuple[dict[str, torch.Tensor], dict]:
        """The loss terms of a batch, logged; returns them and the `log` options."""
        prediction = self.predict(batch, split, batch_idx)
        metrics = ditar_loss(prediction, self.loss_config)
        weight = 1 if split == "train" else max(int(prediction.frame_mask.sum()), 1)  # (no GPU sync in training)
        return metrics, log_losses(self, metrics, split, weight)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        metrics = self.step(batch, batch_idx, "train")[0]
        weights = dataclasses.asdict(self.loss_config)
        terms = {name: weights[f"{name}_weight"] * metrics[name] for name in ("diffusion", "stop", "prior",
                                                                              "alignment", "aligner", "advance")
                 if name in metrics}
        log_term_gradients(self, terms, last_layer(self.model.lm).parameters())
        return metrics["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        metrics, options = self.step(batch, batch_idx, "val")

        with_other_text = {}

        def diffusion_with(text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
            with_other_text.update(ditar_loss(self.predict(batch, "val", batch_idx, text, text_lengths),
                                              self.loss_config))
            return with_other_text["diffusion"]

        log_text_reliance(self, batch, metrics["diffusion"], diffusion_with, options, term="diffusion")
        if "prior" in with_other_text:  # the LM's own regression of the patch, as MELLE's `reg`
            self.log("val/prior_other_text", with_other_text["prior"].detach(), **options)
            self.log("val/prior_text_reliance", (with_other_text["prior"] - metrics["prior"]).detach(), **options)

    def sample_features(self, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
        """Audio samples of validation (see `ttsframe.training.audio_samples`)."""
        return ditar_samples(self.model, batch, max_items)

    def configure_optimizers(self) -> dict:
        """AdamW + schedule; the cosine/linear horizon defaults to the trainer's max_steps."""
        return task_optimizer(self)
