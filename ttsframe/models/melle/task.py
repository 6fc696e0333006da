"""Lightning training task of MELLE: `MelleTask` trains `Melle` with `loss.melle_loss`.

Checkpoint contract (synthesis and release read it): `state_dict` keys are `model.<Melle
parameter or buffer name>` (the buffers `mel_mean`, `mel_std`, `mel_stats_fitted` included);
`hyper_parameters` holds `model_config` (the `MelleConfig` fields), `optim`, `seed`, `loss`
(`MelleLossConfig` fields or None for the defaults), `mel` (the data's `MelConfig` fields, set
when training starts on shards), `stats_utterances`, `family` ("melle") and `task` ("melle").

Mel statistics: before the first step of a fresh run (`on_fit_start`, after any checkpoint
restore) the per-bin mean and std of the log-mel are computed from the first
``stats_utterances`` utterances of the training shards in index order, identical on every rank
and independent of the seed; a resumed run keeps the ones in its checkpoint.

Every `trainer.log_every_n_steps` steps it logs each weighted loss term's gradient norm on the
transformer's last block (`grad/reg`, `grad/kl`, `grad/flux`, `grad/stop`, and with a phoneme pointer
`grad/advance`, `grad/aligner`: `ttsframe.training.grad_norms`).

Determinism: the latent sampling draws its eps from a generator seeded by (seed, rank, step,
micro-batch) in training and (seed, rank, batch index) in validation, so exact resume holds and
every validation pass sees the same noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightning as L
import torch

from ttsframe.data.collate import Batch
from ttsframe.models.melle.loss import MelleLossConfig, MellePrediction, melle_loss
from ttsframe.models.melle.model import Melle, MelleConfig
from ttsframe.models.melle.presets import get_preset
from ttsframe.models.melle.samples import melle_samples
from ttsframe.training.mel_stats import mel_statistics  # noqa: F401  (re-exported: the statistics MELLE uses)
from ttsframe.training.mel_stats import check_mel_data, fit_shard_mel_stats, start_mel_training
from ttsframe.training.grad_norms import last_layer, log_term_gradients
from ttsframe.training.optim import task_optimizer
from ttsframe.training.resume import step_generator
from ttsframe.training.task_logging import log_losses, log_text_reliance

FAMILY = "melle"
ARCH_OVERRIDES = ("d_model", "n_layers", "n_heads", "ffn_dim", "dropout", "reduction_factor", "self_feed",
                  "phoneme_pointer", "advance_grad_scale", "advance_sees_group",
                  "pointer_jitter", "duration_plan", "pointer_context")


def model_config(preset: str, vocab_size: int, n_codebooks: int | None = 0, codebook_size: int | None = 0,
                 **overrides) -> dict:
    """`MelleConfig` fields of a preset, with the non-None `overrides` applied.

    The codebook arguments exist for the train stage's common call; MELLE reads mel frames,
    so they must be 0 or None.
    """
    if n_codebooks:
        raise ValueError(f"MELLE models mel frames, but the data has {n_codebooks} codebooks (use codec=mel)")
    unknown = set(overrides) - set(ARCH_OVERRIDES)
    if unknown:
        raise ValueError(f"unknown MELLE overrides {sorted(unknown)}; valid: {', '.join(ARCH_OVERRIDES)}")
    config = get_preset(preset, vocab_size)
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return dataclasses.asdict(config)


class MelleTask(L.LightningModule):
    """Trains `Melle`: teacher-forced mel groups, regression + KL + flux + stop losses.

    Args:
        model_config: `MelleConfig` fields (`model_config()` gives a preset's).
        optim: `OptimConfig` fields.
        seed: base seed of the latent noise.
        loss: `MelleLossConfig` fields; None keeps the defaults.
        mel: the data's `MelConfig` fields (filled from the shards' index when training starts).
        stats_utterances: training utterances the mel statistics are computed from.
    """

    FAMILY, TASK, FEATURE = FAMILY, "melle", "mel"
    build_model_config = staticmethod(model_config)

    def __init__(self, model_config: dict, optim: dict | None = None, seed: int = 0, loss: dict | None = None,
                 mel: dict | None = None, stats_utterances: int = 1000):
        super().__init__()
        self.save_hyperparameters()
        self.hparams["family"], self.hparams["task"] = FAMILY, self.TASK
        self.model = Melle(MelleConfig(**model_config))
        valid = {f.name for f in dataclasses.fields(MelleLossConfig)}
        if set(loss or {}) - valid:
            raise ValueError(f"unknown MELLE loss settings {sorted(set(loss) - valid)}; valid: {', '.join(sorted(valid))}")
        self.loss_config = MelleLossConfig(**(loss or {}))
        self.model.stop_head.set_pos_weight(self.loss_config.stop_pos_weight)  # its decision rule

    # -- data checks and statistics --------------------------------------------------------
    def on_fit_start(self) -> None:
        start_mel_training(self)

    def check_data(self, data) -> None:
        """Fails on shards that do not hold mel frames of the model's size; records their mel config."""
        check_mel_data(self, data, "MELLE")

    def fit_mel_stats(self, shard_dir: str | Path, split: str = "train") -> None:
        """Sets the model's mel statistics from the split's first `stats_utterances` utterances."""
        fit_shard_mel_stats(self.model, shard_dir, split, self.hparams.stats_utterances, FAMILY)

    # -- steps -----------------------------------------------------------------------------
    def noise_generator(self, split: str, batch_idx: int) -> torch.Generator:
        return step_generator(self, split, batch_idx)

    def predict_mel(self, batch: Batch, split: str, batch_idx: int, text: torch.Tensor | None = None,
                    text_lengths: torch.Tensor | None = None) -> MellePrediction:
        """Teacher-forced prediction; `text` (B, L) / `text_lengths` (B,) replace the batch's phonemes.
        The same (split, batch_idx) gives the same noise."""
        generator = self.noise_generator(split, batch_idx)
        return self.model(batch.tokens if text is None else text,
                          batch.token_lengths if text_lengths is None else text_lengths,
                          batch.mel, batch.frame_lengths, generator=generator)

    def step(self, batch: Batch, batch_idx: int, split: str) -> tuple[dict[str, torch.Tensor], dict]:
        """The loss terms of a batch, logged; returns them and the `log` options."""
        prediction = self.predict_mel(batch, split, batch_idx)
        metrics = melle_loss(prediction, self.loss_config)
        weight = 1 if split == "train" else max(int(prediction.frame_mask.sum()), 1)  # (no GPU sync in training)
        return metrics, log_losses(self, metrics, split, weight)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        metrics = self.step(batch, batch_idx, "train")[0]
        c = self.loss_config
        terms = {"reg": metrics["reg"], "kl": c.kl_weight * metrics["kl"], "flux": c.flux_weight * metrics["flux"],
                 "stop": c.stop_weight * metrics["stop"]}
        if "advance" in metrics:  # a phoneme pointer
            terms.update(advance=c.advance_weight * metrics["advance"], aligner=c.aligner_weight * metrics["aligner"])
        log_term_gradients(self, terms, last_layer(self.model.transformer).parameters())
        return metrics["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        metrics, options = self.step(batch, batch_idx, "val")

        def regression_with(text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
            return melle_loss(self.predict_mel(batch, "val", batch_idx, text, text_lengths), self.loss_config)["reg"]

        log_text_reliance(self, batch, metrics["reg"], regression_with, options, term="reg")

    def sample_features(self, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
        """Audio samples of validation (see `ttsframe.training.audio_samples`)."""
        return melle_samples(self.model, batch, max_items)

    def configure_optimizers(self) -> dict:
        """AdamW + schedule; the cosine/linear horizon defaults to the trainer's max_steps."""
        return task_optimizer(self)
