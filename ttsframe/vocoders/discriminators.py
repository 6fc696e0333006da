"""HiFi-GAN's discriminators: multi-period (MPD) and multi-scale (MSD).

Each sub-discriminator maps a waveform (B, 1, N) to (scores (B, L), feature maps [...]); the
feature maps (every layer's output before the final projection) feed the feature-matching loss.

- MPD: for each period p the waveform is folded to (B, 1, N / p, p) and strided 2-D convs with
  (k, 1) kernels look at every p-th sample, which exposes periodic structure.
- MSD: grouped 1-D convs on the raw waveform and its x2 and x4 average-pooled copies; the first
  scale uses spectral norm, the others weight norm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

Output = tuple[list[torch.Tensor], list[list[torch.Tensor]]]  # scores per sub-discriminator, their feature maps


@dataclass
class DiscriminatorConfig:
    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    mpd_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    msd_scales: int = 3
    msd_channels: list[int] = field(default_factory=lambda: [128, 128, 256, 512, 1024, 1024, 1024])
    msd_groups: list[int] = field(default_factory=lambda: [1, 4, 16, 16, 16, 16, 1])


def discriminators_v1() -> DiscriminatorConfig:
    """HiFi-GAN's sizes (MPD 41.1M + MSD 29.6M parameters)."""
    return DiscriminatorConfig()


def discriminators_tiny() -> DiscriminatorConfig:
    """Channels / 8: trains on CPU in seconds."""
    return DiscriminatorConfig(mpd_channels=[4, 16, 64, 128, 128], msd_channels=[16, 16, 32, 64, 128, 128, 128])


DISCRIMINATOR_PRESETS = {"v1": discriminators_v1, "tiny": discriminators_tiny}


class PeriodDiscriminator(nn.Module):
    """wav (B, 1, N) -> scores (B, L), feature maps; sees every `period`-th sample."""

    def __init__(self, period: int, channels: list[int], kernel: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        c_in = [1, *channels[:-1]]
        strides = [stride] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(i, o, (kernel, 1), (s, 1), padding=((kernel - 1) // 2, 0)))
            for i, o, s in zip(c_in, channels, strides))
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, n = wav.shape
        if n % self.period:
            wav = F.pad(wav, (0, self.period - n % self.period), mode="reflect")
        x = wav.view(b, c, -1, self.period)  # (B, 1, N / p, p)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class ScaleDiscriminator(nn.Module):
    """wav (B, 1, N) -> scores (B, L), feature maps; grouped strided 1-D convs."""

    KERNELS = (15, 41, 41, 41, 41, 41, 5)
    STRIDES = (1, 2, 2, 4, 4, 1, 1)

    def __init__(self, channels: list[int], groups: list[int], spectral: bool = False):
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        c_in = [1, *channels[:-1]]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(i, o, k, s, groups=g, padding=(k - 1) // 2))
            for i, o, k, s, g in zip(c_in, channels, self.KERNELS, self.STRIDES, groups))
        self.conv_post = norm(nn.Conv1d(channels[-1], 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, features = wav, []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        config = config or DiscriminatorConfig()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, config.mpd_channels) for p in config.periods)

    def forward(self, wav: torch.Tensor) -> Output:
        """wav (B, 1, N) -> ([scores (B, L_p)], [[feature maps]]) per period."""
        outputs = [d(wav) for d in self.discriminators]
        return [s for s, _ in outputs], [f for _, f in outputs]


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        config = config or DiscriminatorConfig()
        layers = len(ScaleDiscriminator.KERNELS)
        if len(config.msd_channels) != layers or len(config.msd_groups) != layers:
            raise ValueError(f"msd_channels and msd_groups need {len(ScaleDiscriminator.KERNELS)} entries each")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(config.msd_channels, config.msd_groups, spectral=i == 0)
            for i in range(config.msd_scales))

    def forward(self, wav: torch.Tensor) -> Output:
        """wav (B, 1, N) -> ([scores (B, L_s)], [[feature maps]]) for N, N / 2, N / 4, ... samples."""
        scores, features = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                wav = F.avg_pool1d(wav, 4, 2, padding=2)  # (B, 1, ~N / 2^i)
            s, f = d(wav)
            scores.append(s)
            features.append(f)
        return scores, features
