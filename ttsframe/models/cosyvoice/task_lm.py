"""Lightning task of CosyVoice's text-speech LM: `CosyVoiceLMTask` trains `SpeechLM` on the shards'
text ids, speech-tokenizer ids (`speech.npy`) and speaker embeddings (`spk.npy`).

Checkpoint contract (synthesis and release read it): `state_dict` keys are `model.<SpeechLM
name>`; `hyper_parameters` holds `model_config` (`LMConfig` fields), `optim`, `seed`, `family`
("cosyvoice") and `task` ("cosyvoice_lm").

Validation also scores text reliance, the known failure of small AR TTS models: the loss with
each row's own text next to the loss with another row's, different text (`task_logging.other_text`).
`val/text_reliance` = other - own; near 0 means the LM ignores the text.
"""

from __future__ import annotations

import dataclasses

import lightning as L
import torch

from ttsframe.data.collate import Batch
from ttsframe.training.grad_norms import last_layer, log_term_gradients
from ttsframe.models.cosyvoice.lm import LMConfig, SpeechLM, lm_loss
from ttsframe.models.cosyvoice.presets import check_shards_and_overrides, family_preset
from ttsframe.models.cosyvoice.pretrained import check_shards, pretrained_part
from ttsframe.training.optim import task_optimizer
from ttsframe.training.resume import step_generator
from ttsframe.training.task_logging import other_text

FAMILY = "cosyvoice"
LM_OVERRIDES = ("d_model", "n_layers", "n_heads", "ffn_dim", "dropout")


def needs_speech(batch: Batch) -> None:
    if batch.speech is None:
        raise ValueError("the batch has no speech tokens: tokenize with a speech tokenizer "
                         "(the cosyvoice recipe's tokenize stage, options speech_tokens: true)")


def lm_model_config(preset: str, vocab_size: int, n_codebooks: int | None = 0, codebook_size: int | None = 0,
                    index: dict | None = None, **overrides) -> dict:
    """`LMConfig` fields of a family preset (`presets.FAMILY_PRESETS`) for the shards' `index`."""
    index = check_shards_and_overrides(index, overrides, LM_OVERRIDES, "LM")
    config = family_preset(preset).lm(vocab_size, int(index["speech_vocab_size"]), index.get("spk_dim"))
    return dataclasses.asdict(dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None}))


class CosyVoiceLMTask(L.LightningModule):
    """Trains `SpeechLM`: cross-entropy on the speech tokens and eos, top-1 accuracy.

    Args:
        model_config: `LMConfig` fields (`lm_model_config()` gives a preset's).
        optim: `OptimConfig` fields.
        seed: base seed of the step generators (bistream block draws).
    """

    FAMILY, TASK, FEATURE = FAMILY, "cosyvoice_lm", "mel"
    build_model_config = staticmethod(lm_model_config)

    def __init__(self, model_config: dict, optim: dict | None = None, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.hparams["family"], self.hparams["task"] = FAMILY, self.TASK
        self.model = SpeechLM(LMConfig(**model_config))

    @staticmethod
    def initial_model(source: str, index: dict, vocab_size: int) -> tuple[dict, dict]:
        """(LMConfig fields, weights) of the LM in `source` (`model.init_from`; `pretrained.pretrained_part`),
        checked against the shards."""
        config, state, mel = pretrained_part(source, "lm")
        check_shards("lm", config, mel, index, vocab_size)
        return config, state

    def metrics(self, batch: Batch, batch_idx: int, split: str, text: torch.Tensor | None = None,
                text_lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        needs_speech(batch)
        spk = batch.spk if self.model.config.spk_dim else None
        prediction = self.model.predict(batch.tokens if text is None else text,
                                        batch.token_lengths if text_lengths is None else text_lengths,
                                        batch.speech, batch.speech_lengths, spk,
                                        generator=step_generator(self, split, batch_idx))
        return lm_loss(prediction.logits, prediction.targets)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        metrics = self.metrics(batch, batch_idx, "train")
        self.log("train/loss", metrics["loss"].detach(), prog_bar=True, on_step=True, batch_size=len(batch))
        self.log("train/accuracy", metrics["accuracy"].detach(), on_step=True, batch_size=len(batch))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=1)
        log_term_gradients(self, {"ce": metrics["loss"]}, last_layer(self.model.backbone).parameters())
        return metrics["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        options = dict(on_step=False, on_epoch=True, batch_size=int(batch.speech_lengths.sum()) + len(batch),
                       sync_dist=True)
        own = self.metrics(batch, batch_idx, "val")
        self.log("val/loss", own["loss"], prog_bar=True, **options)
        self.log("val/accuracy", own["accuracy"], **options)
        replaced = other_text(batch.tokens, batch.token_lengths)
        if replaced is not None:  # text reliance: the same speech with another row's (different) text
            other = self.metrics(batch, batch_idx, "val", *replaced)
            self.log("val/loss_other_text", other["loss"], **options)
            self.log("val/text_reliance", other["loss"] - own["loss"], **options)

    def configure_optimizers(self) -> dict:
        return task_optimizer(self)
