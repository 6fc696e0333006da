"""Schema of the `vocoder` config group (`configs/vocoder/*.yaml`), and building a vocoder from it.

What a vocoder is and how it trains live here; where it trains (accelerator, devices, logger,
validation and checkpoint intervals, dataloader workers) comes from the recipe's `trainer` group,
as for every train stage. `max_steps` is here rather than in `trainer` because a vocoder's budget
(HiFi-GAN: ~2.5M steps from scratch, tens of thousands to fine-tune) has nothing to do with the
acoustic model's. The mel configuration is the recipe codec's (`codec.mel`), so features, models
and the vocoder share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttsframe.errors import ConfigError

NAMES = ("hifigan", "griffin_lim", "hift")


@dataclass
class VocoderConfig:
    name: str = "hifigan"  # hifigan | griffin_lim | hift (CosyVoice 2's released vocoder, used as it is)
    # generator size: hifigan universal_v1 | tiny (ttsframe.vocoders.hifigan.PRESETS), hift cosyvoice2 | tiny
    preset: str = "universal_v1"
    discriminator: str = "v1"  # discriminator size (ttsframe.vocoders.discriminators): v1 | tiny
    # A finished generator (generator.safetensors, or a published .pth.tar) used as it is: the
    # train_vocoder stage validates and exports it without training; synthesis loads it.
    checkpoint: str | None = None
    init_from: str | None = "universal"  # starting generator weights: universal | null (random) | PATH
    max_steps: int = 0  # training iterations (one D and one G update each); 0: no training
    segment_size: int = 8192  # samples per training segment (a multiple of the hop length)
    batch_size: int = 16  # segments per batch (per process)
    lr: float = 2.0e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.01
    lr_decay: float = 0.999  # exponential: lr * lr_decay ** (step / lr_decay_every)
    lr_decay_every: int = 1000  # steps (HiFi-GAN decays x0.999 per LJSpeech epoch, ~800 steps)
    lambda_mel: float = 45.0
    lambda_fm: float = 2.0
    loss_fmax: float | None = None  # fmax of the mel loss; null: sample_rate / 2 (as HiFi-GAN)
    precision: str | None = "32-true"  # null: the trainer's (GAN vocoders are usually trained in fp32)
    num_val_utterances: int = 4  # dev utterances vocoded at each validation
    max_val_seconds: float = 10.0  # longer ones are cut
    num_audio_samples: int = 2  # of them logged as audio (loggers that take audio: wandb, tensorboard)
    griffin_lim_iters: int = 60  # name: griffin_lim


def check_config(v: Any) -> None:
    if v.name not in NAMES:
        raise ConfigError(f"unknown vocoder.name `{v.name}`; valid: {', '.join(NAMES)}")
    from ttsframe.vocoders import hift
    from ttsframe.vocoders.discriminators import DISCRIMINATOR_PRESETS
    from ttsframe.vocoders.hifigan import PRESETS

    presets = hift.PRESETS if v.name == "hift" else PRESETS
    if v.preset not in presets:
        raise ConfigError(f"unknown vocoder.preset `{v.preset}` of {v.name}; valid: {', '.join(presets)}")
    if v.name == "hift" and (v.checkpoint is None or v.max_steps):
        raise ConfigError("vocoder hift: set vocoder.checkpoint=<CosyVoice 2's hift.pt> and max_steps: 0 (ttsframe "
                          "uses HiFT as it is released, it does not train one)")
    if v.discriminator not in DISCRIMINATOR_PRESETS:
        raise ConfigError(f"unknown vocoder.discriminator `{v.discriminator}`; "
                          f"valid: {', '.join(DISCRIMINATOR_PRESETS)}")
    if v.max_steps < 0 or v.batch_size < 1 or v.segment_size < 1:
        raise ConfigError("vocoder: max_steps >= 0, batch_size >= 1 and segment_size >= 1 required")
    if v.checkpoint is not None and v.max_steps > 0:
        raise ConfigError("vocoder.checkpoint is a finished vocoder (no training); to fine-tune it set "
                          "vocoder.init_from=<that file> and vocoder.checkpoint=null")


def build_from_config(v: Any, mel_config: Any):
    """The inference vocoder a `vocoder` config describes, for features of `mel_config`.

    griffin_lim -> GriffinLim; hift -> the HiFT of `checkpoint` (hift.pt, sizes `preset`);
    hifigan -> the generator of `checkpoint`, else of `init_from`
    (`universal`: the published universal generator). A trained one is
    `<exp>/<train_vocoder stage>/generator.safetensors`: pass it as `checkpoint`.
    """
    from ttsframe.vocoders import build_vocoder

    check_config(v)
    if v.name == "griffin_lim":
        return build_vocoder("griffin_lim", mel_config, n_iter=v.griffin_lim_iters)
    if v.name == "hift":
        return build_vocoder("hift", mel_config, checkpoint=Path(v.checkpoint), preset=v.preset)
    source = v.checkpoint or v.init_from
    if source is None:
        raise ConfigError("vocoder: no generator weights (checkpoint and init_from are null): set "
                          "vocoder.checkpoint=<generator.safetensors>, or init_from and max_steps to train one")
    return build_vocoder("hifigan", mel_config, checkpoint=None if source == "universal" else Path(source),
                         preset=v.preset)
