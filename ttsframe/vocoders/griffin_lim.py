"""Griffin-Lim: the training-free vocoder (log-mel -> linear magnitude -> phase by fast Griffin-Lim).

Magnitude: pseudo-inverse of the mel filterbank, clamped positive, refined by a few multiplicative
non-negative least-squares updates. Phase: fast Griffin-Lim (Perraudin, Balazs and Sondergaard,
2013), i.e. Griffin-Lim with momentum, torch.stft / torch.istft on the mel's device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.codecs.mel import MelConfig, mel_filterbank


class GriffinLim(nn.Module):
    """mel (B, n_mels, T) -> wav (B, T * hop_length).

    Args:
        mel_config: the configuration the log-mels were computed with.
        n_iter: phase iterations (fast GL is near convergence after ~30-60).
        momentum: fast Griffin-Lim's alpha; 0 gives the classic algorithm.
        nnls_iters: multiplicative updates refining the pseudo-inverse magnitude.
        seed: of the random initial phase, so the output is deterministic.
    """

    def __init__(self, mel_config: MelConfig, n_iter: int = 60, momentum: float = 0.99,
                 nnls_iters: int = 10, seed: int = 0):
        super().__init__()
        self.mel_config = mel_config
        self.sample_rate = mel_config.sample_rate
        self.n_iter, self.momentum, self.nnls_iters, self.seed = n_iter, momentum, nnls_iters, seed
        basis = torch.from_numpy(mel_filterbank(mel_config)).double()  # (M, F)
        self.register_buffer("mel_basis", basis.float(), persistent=False)
        self.register_buffer("mel_pinv", torch.linalg.pinv(basis).float(), persistent=False)  # (F, M)
        self.register_buffer("window", torch.hann_window(mel_config.win_length), persistent=False)

    def magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel (B, M, T) -> linear magnitude (B, F, T) >= 0 with mel_basis @ mag ~= exp(mel)."""
        target = torch.exp(mel.float())  # (B, M, T)
        mag = torch.clamp(self.mel_pinv @ target, min=self.mel_config.log_floor * 1e-2)  # (B, F, T)
        numerator = self.mel_basis.T @ target  # (B, F, T)
        for _ in range(self.nnls_iters):  # Lee-Seung updates for min ||B s - m||^2, s >= 0
            mag = mag * numerator / (self.mel_basis.T @ (self.mel_basis @ mag) + 1e-12)
        return mag

    def _stft(self, wav: torch.Tensor, n_frames: int) -> torch.Tensor:
        cfg = self.mel_config
        spec = torch.stft(wav, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window,
                          center=True, return_complex=True)  # (B, F, n_frames + 1)
        return spec[..., :n_frames]

    def _istft(self, spec: torch.Tensor, num_samples: int) -> torch.Tensor:
        cfg = self.mel_config
        wav = torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window,
                          center=True)  # (B, (T - 1) * hop)
        return F.pad(wav, (0, num_samples - wav.shape[-1]))

    def phase_reconstruct(self, mag: torch.Tensor) -> torch.Tensor:
        """Linear magnitude (B, F, T) -> wav (B, T * hop) by fast Griffin-Lim."""
        cfg = self.mel_config
        n_frames = mag.shape[-1]
        num_samples = n_frames * cfg.hop_length
        if n_frames < 2:
            return mag.new_zeros(mag.shape[0], num_samples)
        gen = torch.Generator(device=mag.device).manual_seed(self.seed)
        phase = torch.rand(mag.shape, generator=gen, device=mag.device) * (2 * math.pi)
        angles = torch.polar(torch.ones_like(mag), phase)  # (B, F, T) complex, |.| = 1
        previous = torch.zeros_like(angles)
        for _ in range(self.n_iter):
            rebuilt = self._stft(self._istft(mag * angles, num_samples), n_frames)
            accelerated = rebuilt + self.momentum * (rebuilt - previous)
            previous = rebuilt
            angles = accelerated / (accelerated.abs() + 1e-16)
        wav = self._istft(mag * angles, num_samples)  # frame t centred on sample t * hop
        # MelSpectrogram's frame t is centred on t * hop + shift: delay to line up with it.
        shift = cfg.n_fft // 2 - cfg.padding
        return F.pad(wav, (shift, 0))[..., :num_samples]

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, T) -> wav (B, T * hop_length)."""
        if mel.dim() != 3 or mel.shape[1] != self.mel_config.n_mels:
            raise ValueError(f"expected log-mel (B, {self.mel_config.n_mels}, T), got {tuple(mel.shape)}")
        return self.phase_reconstruct(self.magnitude(mel))
