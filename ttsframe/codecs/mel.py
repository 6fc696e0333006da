"""The one log-mel configuration of ttsframe and its feature extractor (the codec: `mel_codec.py`).

`MelSpectrogram` follows the universal HiFi-GAN recipe (jik876/hifi-gan `meldataset.py`): reflect
padding of (n_fft - hop) / 2 on both sides, STFT without centering, magnitude
sqrt(re^2 + im^2 + 1e-9), Slaney-style mel filterbank (librosa's default), natural log of the
magnitude clamped at `log_floor`. A waveform of N samples gives exactly `frames_for(N)` frames
(N // hop for the default settings), frame t centred on sample t * hop + hop / 2.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.codecs.base import full_lengths
from ttsframe.errors import ConfigError


@dataclass
class MelConfig:
    """Log-mel settings shared by features, models and vocoders; stored in every checkpoint."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0  # None: sample_rate / 2
    log_floor: float = 1e-5  # log(clamp(mel, log_floor)); log(1e-5) = -11.51 is silence
    center: bool = False  # False: pad (n_fft - hop) / 2 (HiFi-GAN); True: pad n_fft / 2 (torch.stft)

    @property
    def padding(self) -> int:
        """Samples of reflect padding on each side before the (uncentred) STFT."""
        return self.n_fft // 2 if self.center else (self.n_fft - self.hop_length) // 2

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def frames_for(self, num_samples: int) -> int:
        padded = num_samples + 2 * self.padding
        return 0 if padded < self.n_fft else 1 + (padded - self.n_fft) // self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_any(cls, value: "MelConfig | Mapping[str, Any]") -> "MelConfig":
        """A MelConfig from itself, a dict or a DictConfig; unknown keys fail."""
        if isinstance(value, MelConfig):
            return value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ConfigError(f"mel: unknown key(s) {unknown}; valid keys: {', '.join(sorted(names))}")
        return cls(**{k: value[k] for k in value})


def check_mel_compatible(a: MelConfig | Mapping, b: MelConfig | Mapping, what: str) -> None:
    """Raises ConfigError naming every field on which two mel configurations differ."""
    a, b = MelConfig.from_any(a).to_dict(), MelConfig.from_any(b).to_dict()
    diffs = [f"{k}: {a[k]!r} vs {b[k]!r}" for k in a if not _same(a[k], b[k])]
    if diffs:
        raise ConfigError(
            f"{what}: mel configurations differ ({'; '.join(diffs)}); features, models and vocoders "
            "must share one mel configuration"
        )


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
    return x == y


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, hz)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, Slaney area normalisation.

    Equal to `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)` (htk=False, norm="slaney")
    without importing librosa (whose numba start-up costs ~2 s).
    """
    fmax = cfg.sample_rate / 2 if cfg.fmax is None else cfg.fmax
    fft_hz = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(fmax), cfg.n_mels + 2))  # (M + 2,)
    widths = np.diff(edges)  # (M + 1,)
    ramps = edges[:, None] - fft_hz[None, :]  # (M + 2, F)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (M, F)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """(..., L) -> (..., L + 2 pad): reflect, or zeros when L <= pad (reflect needs pad < L)."""
    if pad == 0:
        return x
    mode = "reflect" if x.shape[-1] > pad else "constant"
    return F.pad(x.unsqueeze(-2), (pad, pad), mode=mode).squeeze(-2)


class MelSpectrogram(nn.Module):
    """wav (B, T_wav) -> log-mel (B, n_mels, T) with T = cfg.frames_for(T_wav)."""

    def __init__(self, cfg: MelConfig | None = None):
        super().__init__()
        self.cfg = cfg or MelConfig()
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank(self.cfg)), persistent=False)
        self.register_buffer("window", torch.hann_window(self.cfg.win_length), persistent=False)

    def frames_for(self, num_samples: int) -> int:
        return self.cfg.frames_for(num_samples)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """With `lengths` (B,), each item is padded at its own end, so item i's first
        frames_for(lengths[i]) frames equal those of the item alone; later frames are log_floor."""
        cfg = self.cfg
        wav = wav.float()
        n_frames = cfg.frames_for(wav.shape[-1])
        if n_frames == 0:
            return wav.new_zeros(wav.shape[0], cfg.n_mels, 0)
        if lengths is None:
            padded = _pad(wav, cfg.padding)  # (B, T_wav + 2p)
        else:
            lengths = full_lengths(wav, lengths).tolist()
            if max(lengths) > wav.shape[-1] or min(lengths) < 0:
                raise ValueError(f"lengths {lengths} outside [0, {wav.shape[-1]}]")
            padded = wav.new_zeros(wav.shape[0], wav.shape[-1] + 2 * cfg.padding)
            for i, n in enumerate(lengths):
                padded[i, : n + 2 * cfg.padding] = _pad(wav[i, :n], cfg.padding)
        spec = torch.stft(
            padded, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
            window=self.window, center=False, return_complex=True,
        )  # (B, F, T)
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        logmel = torch.log(torch.clamp(self.mel_basis @ mag, min=cfg.log_floor))  # (B, M, T)
        if lengths is not None:
            valid = torch.tensor([cfg.frames_for(n) for n in lengths], device=wav.device)
            pad_mask = torch.arange(n_frames, device=wav.device)[None, :] >= valid[:, None]  # (B, T)
            logmel = logmel.masked_fill(pad_mask[:, None, :], math.log(cfg.log_floor))
        return logmel
