"""Lightning task of CosyVoice's flow decoder: `CosyVoiceFlowTask` trains `CosyVoiceFlow` (conditional
flow matching from speech tokens to log-mel) on the shards' `speech.npy`, `mel.npy` and `spk.npy`; or,
started from released weights (`model.init_from`, `initial_model`), CosyVoice 2's `CosyVoice2Flow`
(the same CFM loss on its estimator; it reads raw log-mel, so no mel statistics are fitted).

Checkpoint contract (synthesis and release read it): `state_dict` keys are `model.<CosyVoiceFlow
name>` (the mel statistics buffers included); `hyper_parameters` holds `model_config`
(`FlowConfig` or `CosyVoice2FlowConfig` fields), `optim`, `seed`, `stats_utterances`, `family` ("cosyvoice") and `task`
("cosyvoice_flow").

Mel statistics are fitted before the first step of a fresh run from the first
`stats_utterances` training utterances (index order, the same on every rank), as MELLE does.
The step's random draws (noise, t, prompt prefix, CFG drop, mask pattern) come from a generator
seeded by (seed, rank, step, micro-batch), so exact resume holds.
"""

from __future__ import annotations

import dataclasses
import itertools

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from ttsframe.data.collate import Batch
from ttsframe.data.dataset import ShardStream
from ttsframe.models.cosyvoice.flow_build import build_flow
from ttsframe.models.cosyvoice.flow_loss import flow_loss
from ttsframe.models.cosyvoice.presets import check_shards_and_overrides, family_preset
from ttsframe.models.cosyvoice.pretrained import check_shards, pretrained_part
from ttsframe.models.cosyvoice.task_lm import needs_speech
from ttsframe.training.mel_stats import mel_statistics, shard_data
from ttsframe.training.grad_norms import last_layer, log_term_gradients
from ttsframe.training.optim import task_optimizer
from ttsframe.training.resume import step_generator

FAMILY = "cosyvoice"
FLOW_OVERRIDES = ("d_model", "n_heads", "ffn_dim", "dropout")


def flow_model_config(preset: str, vocab_size: int, n_codebooks: int | None = 0, codebook_size: int | None = 0,
                      index: dict | None = None, **overrides) -> dict:
    """`FlowConfig` fields of a family preset for the shards' `index` (speech tokens, rate, speaker size)."""
    index = check_shards_and_overrides(index, overrides, FLOW_OVERRIDES, "flow")
    n_mels = int((index.get("codec") or {}).get("mel", {}).get("n_mels", 80))
    config = family_preset(preset).flow(int(index["speech_vocab_size"]), float(index["speech_frame_rate"]),
                                        index.get("spk_dim"), n_mels)
    return dataclasses.asdict(dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None}))


class CosyVoiceFlowTask(L.LightningModule):
    """Trains the flow (`CosyVoiceFlow`, or `CosyVoice2Flow` from released weights) with the masked CFM loss.

    Args:
        model_config: `FlowConfig` fields (`flow_model_config()` gives a preset's).
        optim: `OptimConfig` fields.
        seed: base seed of the step generators.
        stats_utterances: training utterances the mel statistics are computed from.
    """

    FAMILY, TASK, FEATURE = FAMILY, "cosyvoice_flow", "mel"
    build_model_config = staticmethod(flow_model_config)

    def __init__(self, model_config: dict, optim: dict | None = None, seed: int = 0, stats_utterances: int = 1000):
        super().__init__()
        self.save_hyperparameters()
        self.hparams["family"], self.hparams["task"] = FAMILY, self.TASK
        self.model = build_flow(model_config)
        self.register_buffer("stats_fitted", torch.tensor(False))
        self.prior_weight = getattr(self.model.config, "prior_weight", 0.0)

    @staticmethod
    def initial_model(source: str, index: dict, vocab_size: int) -> tuple[dict, dict]:
        """(flow config fields, weights) of the flow in `source` (`model.init_from`), checked against the shards."""
        config, state, mel = pretrained_part(source, "flow")
        check_shards("flow", config, mel, index, vocab_size)
        return config, state

    def on_fit_start(self) -> None:
        if bool(self.stats_fitted) or self._trainer is None or not hasattr(self.model, "set_mel_stats"):
            return
        data = shard_data(self.trainer.datamodule)
        if data is None:
            return
        stream = ShardStream(data.shard_dir, data.splits["train"], rank=0, world_size=1)
        items = itertools.islice(iter(stream), self.hparams.stats_utterances)
        mean, std, frames = mel_statistics(item["mel"] for item in items)
        self.model.set_mel_stats(mean.to(self.device), std.to(self.device))
        self.stats_fitted.fill_(True)
        _print(f"cosyvoice flow: mel statistics from {frames} frames of {data.shard_dir}")

    def loss(self, batch: Batch, batch_idx: int, split: str) -> dict[str, torch.Tensor]:
        needs_speech(batch)
        spk = batch.spk if batch.spk is not None else torch.zeros(len(batch), self.model.config.spk_dim,
                                                                  device=self.device)
        prediction = self.model(batch.speech.clamp(min=0), batch.speech_lengths, batch.mel, batch.frame_lengths,
                                spk, generator=step_generator(self, split, batch_idx))
        return flow_loss(prediction, self.prior_weight)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses = self.loss(batch, batch_idx, "train")
        self.log("train/loss", losses["loss"].detach(), prog_bar=True, on_step=True, batch_size=len(batch))
        if self.prior_weight > 0:
            self.log("train/prior", losses["prior"].detach(), on_step=True, batch_size=len(batch))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=1)
        terms = {"cfm": losses["cfm"]}
        if self.prior_weight > 0:
            terms["prior"] = self.prior_weight * losses["prior"]
        log_term_gradients(self, terms, last_layer(self.model.encoder).parameters())  # the encoder feeds both
        return losses["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        losses = self.loss(batch, batch_idx, "val")
        frames = int(batch.frame_lengths.sum())
        self.log("val/loss", losses["loss"], prog_bar=True, on_epoch=True, batch_size=frames, sync_dist=True)
        self.log("val/cfm", losses["cfm"], on_epoch=True, batch_size=frames, sync_dist=True)
        if self.prior_weight > 0:
            self.log("val/prior", losses["prior"], on_epoch=True, batch_size=frames, sync_dist=True)

    def configure_optimizers(self) -> dict:
        return task_optimizer(self)


@rank_zero_only
def _print(message: str) -> None:
    print(message)
