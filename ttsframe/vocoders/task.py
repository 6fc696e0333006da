"""`VocoderTask`: HiFi-GAN training (generator + MPD + MSD) as a Lightning module, manual optimisation.

Each training batch is one iteration: a discriminator update on real segments vs the generator's
(detached) output, then a generator update on 45 x mel L1 + 2 x feature matching + adversarial
loss. Two AdamW optimisers (betas 0.8 / 0.99) with exponential learning-rate decay. Lightning
counts both optimiser steps in `trainer.global_step`, so it is twice the number of iterations
(the train_vocoder stage converts).

Validation vocodes whole dev utterances and logs `val/loss`, the mel L1 between the input
log-mel and that of the output (same mel config), plus a few audio samples when the logger takes
audio. Checkpoint keys: `generator.*`, `mpd.*`, `msd.*`; hyper_parameters hold `vocoder_config`
(HifiGanConfig) and `mel_config` (MelConfig) dicts, enough to rebuild the generator.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
import torch

from ttsframe.codecs.mel import MelConfig, MelSpectrogram
from ttsframe.vocoders.discriminators import DISCRIMINATOR_PRESETS, MultiPeriodDiscriminator, MultiScaleDiscriminator
from ttsframe.vocoders.hifigan import HifiGanConfig, HifiGanGenerator
from ttsframe.vocoders.losses import (discriminator_loss, feature_matching_loss, generator_adversarial_loss,
                                      mel_l1_loss)

OPTIM_DEFAULTS = {"lr": 2e-4, "betas": [0.8, 0.99], "weight_decay": 0.01, "lr_decay": 0.999, "lr_decay_every": 1000,
                  "lambda_mel": 45.0, "lambda_fm": 2.0, "loss_fmax": None}


class VocoderTask(L.LightningModule):
    """Args:
        vocoder_config: HifiGanConfig fields.
        mel_config: MelConfig fields of the input features.
        discriminator: a `DISCRIMINATOR_PRESETS` name.
        optim: lr, betas, weight_decay, lr_decay, lr_decay_every, lambda_mel, lambda_fm, loss_fmax
            (missing keys take OPTIM_DEFAULTS).
        num_audio_samples: dev utterances logged as audio at each validation.
        init_from: where the generator's first weights came from (recorded only; the stage loads them).
    """

    def __init__(self, vocoder_config: dict, mel_config: dict, discriminator: str = "v1", optim: dict | None = None,
                 num_audio_samples: int = 2, init_from: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.optim = {**OPTIM_DEFAULTS, **(optim or {})}
        mel = MelConfig.from_any(mel_config)
        gen_config = HifiGanConfig.from_any(vocoder_config)
        gen_config.check(mel)
        self.generator = HifiGanGenerator(gen_config)
        disc_config = DISCRIMINATOR_PRESETS[discriminator]()
        self.mpd = MultiPeriodDiscriminator(disc_config)
        self.msd = MultiScaleDiscriminator(disc_config)
        self.features = MelSpectrogram(mel)  # the generator's input (buffers only, not in the checkpoint)
        self.loss_features = MelSpectrogram(dataclasses.replace(mel, fmax=self.optim["loss_fmax"]))
        self._audio: list[tuple[torch.Tensor, torch.Tensor]] = []

    def configure_optimizers(self) -> Any:
        o = self.optim

        def adamw(params):
            return torch.optim.AdamW(params, lr=float(o["lr"]), betas=tuple(o["betas"]),
                                     weight_decay=float(o["weight_decay"]))

        opt_g = adamw(self.generator.parameters())
        opt_d = adamw([*self.mpd.parameters(), *self.msd.parameters()])
        gamma, every = float(o["lr_decay"]), float(o["lr_decay_every"])
        schedules = [torch.optim.lr_scheduler.LambdaLR(opt, lambda step: gamma ** (step / every))
                     for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedules

    def discriminate(self, wav: torch.Tensor):
        """wav (B, 1, N) -> (scores, feature maps) of MPD and MSD together."""
        mpd_scores, mpd_features = self.mpd(wav)
        msd_scores, msd_features = self.msd(wav)
        return mpd_scores + msd_scores, mpd_features + msd_features

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> dict:
        wav = batch  # (B, S)
        opt_g, opt_d = self.optimizers()
        real = wav[:, None]  # (B, 1, S)
        with torch.no_grad():
            mel = self.features(wav)  # (B, M, S / hop)
            target_mel = self.loss_features(wav)
        fake = self.generator(mel)  # (B, 1, S)

        with self.toggled_optimizer(opt_d):
            real_scores, _ = self.discriminate(real)
            fake_scores, _ = self.discriminate(fake.detach())
            loss_d = discriminator_loss(real_scores, fake_scores)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d.step()

        with self.toggled_optimizer(opt_g):
            loss_mel = mel_l1_loss(target_mel, self.loss_features(fake.squeeze(1)))
            with torch.no_grad():
                _, real_features = self.discriminate(real)
            fake_scores, fake_features = self.discriminate(fake)
            loss_adv = generator_adversarial_loss(fake_scores)
            loss_fm = feature_matching_loss(real_features, fake_features)
            loss_g = loss_adv + self.optim["lambda_fm"] * loss_fm + self.optim["lambda_mel"] * loss_mel
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()

        for schedule in self.lr_schedulers():
            schedule.step()
        self.log_dict({"train/loss_g": loss_g, "train/loss_d": loss_d, "train/mel_l1": loss_mel,
                       "train/adv": loss_adv, "train/fm": loss_fm, "lr": opt_g.param_groups[0]["lr"]},
                      prog_bar=False, batch_size=wav.shape[0])
        self.log("train/loss", loss_g.detach(), prog_bar=True, batch_size=wav.shape[0])
        return {"loss": loss_g.detach()}

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        wav = batch  # (1, N)
        mel = self.features(wav)  # (1, M, N / hop)
        fake = self.generator(mel).squeeze(1)  # (1, N)
        loss = mel_l1_loss(mel, self.features(fake))
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=1)
        self.log("val/mel_l1", loss, sync_dist=True, batch_size=1)
        if batch_idx < self.hparams.num_audio_samples:
            self._audio.append((wav[0].float().cpu(), fake[0].float().cpu()))
        return loss

    def on_validation_epoch_end(self) -> None:
        samples, self._audio = self._audio, []
        if samples and not self.trainer.sanity_checking and self.trainer.is_global_zero:
            log_audio(self.logger, samples, self.features.cfg.sample_rate, self.global_step // 2)


def log_audio(logger, samples: list[tuple[torch.Tensor, torch.Tensor]], sample_rate: int, step: int) -> None:
    """(real, generated) pairs to loggers that take audio (wandb's `log_audio`, TensorBoard's
    `add_audio`); other loggers (CSV) are skipped. Never fails the run."""
    if logger is None:
        return
    try:
        if hasattr(logger, "log_audio"):
            clips = [w.numpy() for pair in samples for w in pair]
            captions = [f"{kind} {i}" for i in range(len(samples)) for kind in ("real", "generated")]
            logger.log_audio("val/audio", clips, step=step, sample_rate=[sample_rate] * len(clips), caption=captions)
        elif hasattr(getattr(logger, "experiment", None), "add_audio"):
            for i, (real, fake) in enumerate(samples):
                logger.experiment.add_audio(f"val/real_{i}", real[None], step, sample_rate)
                logger.experiment.add_audio(f"val/generated_{i}", fake[None], step, sample_rate)
    except Exception as e:  # noqa: BLE001 - audio logging is optional
        print(f"vocoder: audio logging failed ({type(e).__name__}: {e})")
