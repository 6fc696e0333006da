"""SpectralCodec: residual VQ over normalised log-mel frames, fitted by ttsframe itself (offline).

encode: wav -> log-mel (MelConfig) -> (x - mean) / std -> K stages of nearest-codeword search on
the residual -> codes (B, K, T). decode: sum of the K codewords -> * std + mean -> log-mel ->
vocoder (Griffin-Lim unless a trained one is passed) -> wav. Fitting: per-dimension mean/std over
all frames seen, then k-means (k-means++ init, fixed Lloyd iterations, seeded) stage by stage on
at most `fit_max_frames` frames drawn uniformly (reservoir sampling) from the train audio.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ttsframe.codecs.base import full_lengths, resolve_device
from ttsframe.codecs.kmeans import fit_rvq, rvq_decode, rvq_encode
from ttsframe.codecs.mel import MelConfig, MelSpectrogram, check_mel_compatible
from ttsframe.codecs.mel_codec import default_vocoder
from ttsframe.codecs.state_file import check_settings, read_state, write_state
from ttsframe.errors import ConfigError, UserError

FORMAT = "ttsframe.spectral_codec/1"


@dataclass
class Config:
    name: str = "spectral"
    mel: MelConfig = field(default_factory=MelConfig)
    n_codebooks: int = 8  # K
    codebook_size: int = 512  # entries per codebook
    kmeans_iters: int = 10  # Lloyd iterations per codebook
    fit_max_frames: int = 32768  # frames k-means sees (uniform sample of the train audio)
    fit_max_seconds: float = 3600.0  # fit reads at most this much audio (shuffle the input)
    seed: int = 0
    vocoder: str = "griffin_lim"  # a key of ttsframe.vocoders.VOCODERS, used by decode
    griffin_lim_iters: int = 60
    device: str = "auto"  # auto | cpu | cuda
    batch_seconds: float = 300.0  # seconds of audio per encode batch


class SpectralCodec:
    """Discrete codec fitted on the train split; see the module docstring."""

    needs_fit = True

    def __init__(self, config: Config | None = None, vocoder=None):
        self.config = config or Config()
        self.mel_config = MelConfig.from_any(self.config.mel)
        self.device = resolve_device(self.config.device)
        self.sample_rate = self.mel_config.sample_rate
        self.frame_rate = self.mel_config.frame_rate
        self.hop_length = self.mel_config.hop_length
        self.n_codebooks = self.config.n_codebooks
        self.codebook_size = self.config.codebook_size
        if self.n_codebooks < 1 or self.codebook_size < 2:
            raise ConfigError(f"spectral codec: need n_codebooks >= 1 and codebook_size >= 2, got "
                              f"{self.n_codebooks} and {self.codebook_size}")
        self.features = MelSpectrogram(self.mel_config).to(self.device)
        self.mean: torch.Tensor | None = None  # (D,)
        self.std: torch.Tensor | None = None  # (D,)
        self.codebooks: torch.Tensor | None = None  # (K, N, D)
        self.fit_report: dict = {}
        self._vocoder = vocoder
        if vocoder is not None:
            check_mel_compatible(vocoder.mel_config, self.mel_config, "spectral codec vs its vocoder")

    @property
    def is_fitted(self) -> bool:
        return self.codebooks is not None

    @property
    def vocoder(self):
        if self._vocoder is None:
            self._vocoder = default_vocoder(self.config.vocoder, self.mel_config, self.config.griffin_lim_iters)
            self._vocoder.to(self.device)
        return self._vocoder

    def frames_for(self, num_samples: int) -> int:
        return self.mel_config.frames_for(num_samples)

    # ---- fitting ----------------------------------------------------------------------------

    @torch.no_grad()
    def fit(self, wavs: Iterable[np.ndarray]) -> dict:
        """Fits normalisation and codebooks on waveforms (T,) at `sample_rate`; returns a report
        with the log-mel reconstruction error (mean |error|, natural log units) for 1..K codebooks."""
        cfg, start = self.config, time.perf_counter()
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        dim = self.mel_config.n_mels
        reservoir = torch.empty(cfg.fit_max_frames, dim, device=self.device)
        total = torch.zeros(dim, dtype=torch.float64, device=self.device)
        total_sq = torch.zeros_like(total)
        seen = seconds = utterances = 0
        for wav in wavs:
            if seconds >= cfg.fit_max_seconds:
                break
            wav = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.device).reshape(1, -1)
            seconds += wav.shape[-1] / self.sample_rate
            utterances += 1
            frames = self.features(wav)[0].T  # (T, D)
            total += frames.sum(0, dtype=torch.float64)
            total_sq += frames.double().pow(2).sum(0)
            seen = self._reservoir_add(reservoir, frames, seen, gen)
        if seen < self.codebook_size:
            raise UserError(f"spectral codec: fit got {seen} frames ({seconds:.1f} s of audio), fewer "
                            f"than codebook_size={self.codebook_size}; give it more audio")
        mean = total / seen
        self.mean = mean.float()
        self.std = (total_sq / seen - mean.pow(2)).clamp_min(1e-4).sqrt().float()
        sample = (reservoir[: min(seen, cfg.fit_max_frames)] - self.mean) / self.std  # (N, D)
        self.codebooks, mse = fit_rvq(sample, cfg.n_codebooks, cfg.codebook_size, cfg.kmeans_iters, gen)
        self.fit_report = {
            "utterances": utterances, "seconds": round(seconds, 2), "frames": seen,
            "kmeans_frames": sample.shape[0], "normalised_mse_per_k": [round(m, 5) for m in mse],
            "logmel_l1_per_k": self._l1_per_k(sample), "fit_seconds": round(time.perf_counter() - start, 2),
        }
        return self.fit_report

    @staticmethod
    def _reservoir_add(reservoir: torch.Tensor, frames: torch.Tensor, seen: int, gen: torch.Generator) -> int:
        """Uniform sample without replacement over all frames so far (Algorithm R, vectorised)."""
        size, n = reservoir.shape[0], frames.shape[0]
        fill = max(0, min(n, size - seen))
        reservoir[seen: seen + fill] = frames[:fill]
        rest = frames[fill:]
        if len(rest):
            positions = torch.arange(seen + fill, seen + n, device=gen.device) + 1  # 1-based stream index
            slots = (torch.rand(len(rest), generator=gen, device=gen.device) * positions).long()
            keep = (slots < size).nonzero().squeeze(1)  # indices into rest
            # Several frames may draw one slot: the last one wins, as in the sequential algorithm
            # (a plain indexed assignment with repeated indices is not deterministic).
            last = torch.full((size,), -1, dtype=torch.long, device=gen.device)
            last.scatter_reduce_(0, slots[keep], keep, reduce="amax")
            taken = (last >= 0).nonzero().squeeze(1)
            reservoir[taken.to(reservoir.device)] = rest[last[taken].to(rest.device)]
        return seen + n

    def _l1_per_k(self, sample: torch.Tensor) -> list[float]:
        """Mean |log-mel error| on `sample` (N, D, normalised) using the first 1..K codebooks."""
        codes = rvq_encode(sample, self.codebooks)
        errors = []
        for k in range(1, self.n_codebooks + 1):
            approx = rvq_decode(codes[:, :k], self.codebooks)
            errors.append(round(float(((approx - sample) * self.std).abs().mean()), 4))
        return errors

    # ---- coding -----------------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise UserError("spectral codec is not fitted: call codec.fit(wavs) or codec.load(path) first")

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) -> codes (B, K, T) long in [0, codebook_size)."""
        self._require_fitted()
        wav = wav.to(self.device)
        lengths = full_lengths(wav, lengths)
        mel = self.features(wav, lengths)  # (B, D, T)
        b, d, t = mel.shape
        x = (mel.transpose(1, 2).reshape(b * t, d) - self.mean) / self.std  # (B*T, D)
        return rvq_encode(x, self.codebooks).reshape(b, t, -1).transpose(1, 2)  # (B, K, T)

    @torch.inference_mode()
    def decode_mel(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K', T), K' <= K -> log-mel (B, D, T)."""
        self._require_fitted()
        b, k, t = codes.shape
        if k > self.n_codebooks:
            raise ValueError(f"got {k} codebooks, the codec has {self.n_codebooks}")
        flat = codes.to(self.device).long().transpose(1, 2).reshape(b * t, k)
        mel = rvq_decode(flat, self.codebooks) * self.std + self.mean  # (B*T, D)
        return mel.reshape(b, t, -1).transpose(1, 2)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K', T) -> wav (B, T * hop)."""
        return self.vocoder(self.decode_mel(codes))

    # ---- persistence ------------------------------------------------------------------------

    def _settings(self) -> dict:
        return {"mel": self.mel_config.to_dict(), "n_codebooks": self.n_codebooks,
                "codebook_size": self.codebook_size}

    def save(self, path: str | Path) -> None:
        """Writes mean, std and codebooks to one safetensors file, settings as JSON metadata."""
        self._require_fitted()
        write_state(path, FORMAT, {**self._settings(), "fit": self.fit_report},
                    {"mean": self.mean, "std": self.std, "codebooks": self.codebooks})

    def load(self, path: str | Path) -> "SpectralCodec":
        """Reads a state written by `save`; fails if it was fitted with other settings."""
        meta, tensors = read_state(path, FORMAT, "spectral codec")
        check_mel_compatible(meta["mel"], self.mel_config, f"{path} vs the codec config")
        check_settings(path, meta, {"n_codebooks": self.n_codebooks, "codebook_size": self.codebook_size})
        self.mean, self.std, self.codebooks = (tensors[k].to(self.device) for k in ("mean", "std", "codebooks"))
        self.fit_report = meta.get("fit", {})
        return self

    def describe(self) -> dict:
        return {
            "name": "spectral", "sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
            **self._settings(), "seed": self.config.seed, "vocoder": self.config.vocoder,
            "bits_per_second": round(self.frame_rate * self.n_codebooks * math.log2(self.codebook_size), 1),
        }
