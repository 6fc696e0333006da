"""The continuous mel codec: encode -> log-mel (`ttsframe.codecs.mel`), decode through a vocoder.

Apart from `mel.py` because it builds vocoders, and vocoders read the mel configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ttsframe.codecs.base import resolve_device
from ttsframe.codecs.mel import MelConfig, MelSpectrogram, check_mel_compatible
from ttsframe.vocoders import build_vocoder


@dataclass
class Config:
    name: str = "mel"
    mel: MelConfig = field(default_factory=MelConfig)
    vocoder: str = "griffin_lim"  # a key of ttsframe.vocoders.VOCODERS, used by decode
    griffin_lim_iters: int = 60
    device: str = "auto"  # auto | cpu | cuda
    batch_seconds: float = 300.0  # seconds of audio per encode batch


def default_vocoder(name: str, mel: MelConfig, griffin_lim_iters: int):
    """The vocoder a codec's decode uses unless one is passed in (e.g. a trained HiFi-GAN)."""
    options = {"n_iter": griffin_lim_iters} if name == "griffin_lim" else {}
    return build_vocoder(name, mel, **options)


class MelCodec:
    """Continuous codec: encode -> log-mel (B, n_mels, T); decode through a vocoder."""

    needs_fit = False
    n_codebooks = 0
    codebook_size = 0

    def __init__(self, config: Config | None = None, vocoder=None):
        self.config = config or Config()
        self.mel_config = MelConfig.from_any(self.config.mel)
        self.device = resolve_device(self.config.device)
        self.sample_rate = self.mel_config.sample_rate
        self.frame_rate = self.mel_config.frame_rate
        self.hop_length = self.mel_config.hop_length
        self.features = MelSpectrogram(self.mel_config).to(self.device)
        self._vocoder = vocoder
        if vocoder is not None:
            check_mel_compatible(vocoder.mel_config, self.mel_config, "mel codec vs its vocoder")

    @property
    def vocoder(self):
        if self._vocoder is None:
            self._vocoder = default_vocoder(self.config.vocoder, self.mel_config, self.config.griffin_lim_iters)
            self._vocoder.to(self.device)
        return self._vocoder

    def frames_for(self, num_samples: int) -> int:
        return self.mel_config.frames_for(num_samples)

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) -> log-mel (B, n_mels, T)."""
        return self.features(wav.to(self.device), None if lengths is None else lengths.to(self.device))

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """log-mel (B, n_mels, T) -> wav (B, T * hop)."""
        return self.vocoder(codes.to(self.device).float())

    def describe(self) -> dict:
        return {
            "name": "mel", "sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
            "n_codebooks": 0, "codebook_size": 0, "dim": self.mel_config.n_mels,
            "mel": self.mel_config.to_dict(), "vocoder": self.config.vocoder,
        }
