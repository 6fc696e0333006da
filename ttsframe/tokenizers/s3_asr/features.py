"""The tokenizer's own front end: Whisper's log-mel (openai/whisper `audio.py::log_mel_spectrogram`).

16 kHz, 80 Slaney mel bands up to 8 kHz, n_fft 400, hop 160 (100 frames per second); the same
features as Whisper and CosyVoice's S3 tokenizer (which uses 128 bands in v2):
    reflect-pad n_fft / 2 on both sides, Hann-windowed STFT, power |X|^2, the last STFT frame
    dropped (N samples -> N // 160 frames), log10 clamped at 1e-10, values below (max - 8)
    raised to it, then (x + 4) / 4 (about [-1, 1.5]).
It is not the framework's `MelConfig` (22.05 kHz HiFi-GAN magnitudes): this one only feeds
the tokenizer. In a padded batch each row is padded and normalised (its max) on its own valid
samples only, so row i equals the row computed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.codecs.mel import MelConfig, mel_filterbank
from ttsframe.data.audio import resample


@dataclass(frozen=True)
class AsrFeatureConfig:
    sample_rate: int = 16_000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    log_floor: float = 1e-10
    dynamic_range: float = 8.0  # log10 units kept below each utterance's maximum

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def frames_for(self, num_samples: int) -> int:
        return num_samples // self.hop_length


class LogMel(nn.Module):
    """wav (B, T_wav) at 16 kHz -> features (B, T, n_mels) with T = T_wav // hop (time-major,
    the layout the model reads). Frames past a row's `frames_for(lengths[i])` are 0."""

    def __init__(self, cfg: AsrFeatureConfig | None = None):
        super().__init__()
        self.cfg = cfg or AsrFeatureConfig()
        slaney = MelConfig(sample_rate=self.cfg.sample_rate, n_fft=self.cfg.n_fft, win_length=self.cfg.n_fft,
                           hop_length=self.cfg.hop_length, n_mels=self.cfg.n_mels, fmin=0.0, fmax=None)
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank(slaney)), persistent=False)  # (M, F)
        self.register_buffer("window", torch.hann_window(self.cfg.n_fft), persistent=False)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        cfg, pad = self.cfg, self.cfg.n_fft // 2
        wav = wav.float()
        batch, n_samples = wav.shape
        lengths = [n_samples] * batch if lengths is None else [int(n) for n in lengths]
        n_frames = cfg.frames_for(n_samples)
        if n_frames == 0:
            return wav.new_zeros(batch, 0, cfg.n_mels)
        padded = wav.new_zeros(batch, n_samples + 2 * pad)
        for i, n in enumerate(lengths):
            row = wav[i, :n][None, None]  # (1, 1, n)
            mode = "reflect" if n > pad else "constant"  # reflect needs pad < n
            padded[i, : n + 2 * pad] = F.pad(row, (pad, pad), mode=mode)[0, 0]
        spec = torch.stft(padded, cfg.n_fft, hop_length=cfg.hop_length, window=self.window,
                          center=False, return_complex=True)  # (B, F, T + 1)
        power = spec[..., :n_frames].abs().pow(2)  # (B, F, T)
        logmel = torch.clamp(self.mel_basis @ power, min=cfg.log_floor).log10().transpose(1, 2)  # (B, T, M)
        valid = torch.tensor([cfg.frames_for(n) for n in lengths], device=wav.device)
        mask = torch.arange(n_frames, device=wav.device)[None, :] < valid[:, None]  # (B, T)
        peak = logmel.masked_fill(~mask[..., None], float("-inf")).amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        logmel = torch.maximum(logmel, peak - cfg.dynamic_range)
        return ((logmel + 4.0) / 4.0).masked_fill(~mask[..., None], 0.0)


def log_mel(wav: np.ndarray, sample_rate: int, features: LogMel | None = None) -> np.ndarray:
    """One mono clip (T_wav,) at any rate -> features (T, n_mels) float32 (resampled with soxr)."""
    features = features or LogMel()
    wav = resample(np.asarray(wav, dtype=np.float32), sample_rate, features.cfg.sample_rate)
    with torch.inference_mode():
        return features(torch.from_numpy(wav)[None])[0].numpy()
