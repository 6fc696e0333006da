"""The Vocoder interface: log-mel (the shared MelConfig) -> waveform."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from ttsframe.codecs.mel import MelConfig


@runtime_checkable
class Vocoder(Protocol):
    """What every vocoder provides (Griffin-Lim, and trained ones such as HiFi-GAN).

    Vocoders are `nn.Module`s, so `.to(device)` moves them; inputs are log-mel frames computed by
    `ttsframe.codecs.mel.MelSpectrogram` with `mel_config`, and a vocoder built for another mel
    configuration is refused with `check_mel_compatible`.
    """

    mel_config: "MelConfig"
    sample_rate: int

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, T) natural-log magnitudes -> wav (B, T * hop_length)."""
        ...
