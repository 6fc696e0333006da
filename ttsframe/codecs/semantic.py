"""SemanticCodec: a first codebook that carries the words, residual VQ for the sound.

The idea of SpeechTokenizer and the semantic-first codecs: the first RVQ layer is phonetic content,
the later layers model what it leaves out. Here the content is the framework's own supervised
speech tokenizer (`s3_asr`, trained by the `train_tokenizer` stage: CTC on phones through an FSQ
bottleneck), so nothing is downloaded.

encode: wav -> log-mel (MelConfig, the mel frames' rate) -> (x - mean) / std = x';
codebook 1 = the speech token whose 40 ms (25 Hz) span holds the frame's centre, repeated at the
mel rate; codebooks 2..K = nearest-codeword RVQ of the residual x' - c_1[token] (c_1[j]: the mean
normalised frame of token j over the train split). decode: c_1[code_1] + the residual codewords ->
* std + mean -> log-mel -> vocoder (the universal HiFi-GAN by default). The decoder is fitted, not
trained: per-token means, then k-means (k-means++ init, fixed Lloyd iterations, seeded) stage by
stage on at most `fit_max_frames` residual frames drawn uniformly. The fitted file holds the
tokenizer's weights too, so shards and releases need no tokenizer folder.
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
from ttsframe.data.audio import resample
from ttsframe.errors import ConfigError, UserError

FORMAT = "ttsframe.semantic_codec/1"
TOKENIZER_PREFIX = "tokenizer."  # the tokenizer's weights in the fitted file


@dataclass
class Config:
    name: str = "semantic"
    tokenizer: str | None = None  # a trained s3_asr tokenizer's folder, to fit (the tokenize stage: the run's)
    mel: MelConfig = field(default_factory=MelConfig)
    n_codebooks: int = 8  # K: the speech tokens + K - 1 residual codebooks
    codebook_size: int = 512  # entries per residual codebook (codebook 1 has the tokenizer's vocabulary)
    kmeans_iters: int = 10
    fit_max_frames: int = 32768  # residual frames k-means sees
    fit_max_seconds: float = 3600.0
    seed: int = 0
    vocoder: str = "hifigan"  # a key of ttsframe.vocoders.VOCODERS, used by decode
    griffin_lim_iters: int = 60
    device: str = "auto"
    batch_seconds: float = 300.0


def token_of_frame(n_frames: int, hop_length: int, win_length: int, sample_rate: int, token_rate: float,
                   n_tokens: int) -> torch.Tensor:
    """(n_frames,) long: the token whose span holds each mel frame's centre (clamped to the tokens)."""
    centres = (torch.arange(n_frames, dtype=torch.float64) * hop_length + win_length / 2) / sample_rate
    return (centres * token_rate).floor().long().clamp(0, max(n_tokens - 1, 0))


class SemanticCodec:
    """Discrete codec: speech tokens, then RVQ of what they leave; see the module docstring."""

    needs_fit = True

    def __init__(self, config: Config | None = None, vocoder=None):
        self.config = config or Config()
        self.mel_config = MelConfig.from_any(self.config.mel)
        self.device = resolve_device(self.config.device)
        self.sample_rate = self.mel_config.sample_rate
        self.frame_rate = self.mel_config.frame_rate
        self.n_codebooks = self.config.n_codebooks
        if self.n_codebooks < 1 or self.config.codebook_size < 2:
            raise ConfigError(f"semantic codec: need n_codebooks >= 1 and codebook_size >= 2, got "
                              f"{self.n_codebooks} and {self.config.codebook_size}")
        self.features = MelSpectrogram(self.mel_config).to(self.device)
        self.tokenizer = None  # S3AsrTokenizer: from config.tokenizer at fit, from the fitted file at load
        self.mean: torch.Tensor | None = None  # (D,)
        self.std: torch.Tensor | None = None  # (D,)
        self.token_means: torch.Tensor | None = None  # (V, D) c_1
        self.residual: torch.Tensor | None = None  # (K - 1, N, D)
        self.fit_report: dict = {}
        self._vocoder = vocoder
        if vocoder is not None:
            check_mel_compatible(vocoder.mel_config, self.mel_config, "semantic codec vs its vocoder")

    @property
    def codebook_size(self) -> int:
        """Entries of the largest codebook: the speech tokens' vocabulary or the residual size."""
        vocab = self.token_means.shape[0] if self.token_means is not None else 0
        return max(vocab, self.config.codebook_size)

    @property
    def is_fitted(self) -> bool:
        return self.token_means is not None

    @property
    def vocoder(self):
        if self._vocoder is None:
            self._vocoder = default_vocoder(self.config.vocoder, self.mel_config, self.config.griffin_lim_iters)
            self._vocoder.to(self.device)
        return self._vocoder

    def frames_for(self, num_samples: int) -> int:
        return self.mel_config.frames_for(num_samples)

    # ---- analysis ---------------------------------------------------------------------------

    def _analyse(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav (B, T_wav), lengths (B,) -> log-mel (B, T, D) and the speech token of each frame (B, T)."""
        mel = self.features(wav, lengths).transpose(1, 2)  # (B, T, D)
        rate = self.tokenizer.sample_rate
        clips = [resample(row[: int(n)].cpu().numpy(), self.sample_rate, rate) for row, n in zip(wav, lengths)]
        longest = max((len(c) for c in clips), default=0)
        batch = torch.zeros(len(clips), longest)
        for i, clip in enumerate(clips):
            batch[i, : len(clip)] = torch.from_numpy(clip)
        clip_lengths = torch.tensor([len(c) for c in clips])
        tokens = self.tokenizer.encode(batch, clip_lengths).to(self.device)  # (B, T_tok)
        per_frame = torch.zeros(mel.shape[:2], dtype=torch.long, device=self.device)
        for i, clip_length in enumerate(clip_lengths.tolist()):
            n_tok = self.tokenizer.frames_for(clip_length)
            if n_tok == 0:
                continue
            index = token_of_frame(mel.shape[1], self.mel_config.hop_length, self.mel_config.win_length,
                                   self.sample_rate, self.tokenizer.frame_rate, n_tok).to(self.device)
            per_frame[i] = tokens[i, index]
        return mel, per_frame

    # ---- fitting ----------------------------------------------------------------------------

    @torch.no_grad()
    def fit(self, wavs: Iterable[np.ndarray]) -> dict:
        """Fits normalisation, token means and residual codebooks on waveforms (T,) at `sample_rate`;
        returns a report with the log-mel reconstruction error (mean |error|) for 1..K codebooks."""
        cfg, start = self.config, time.perf_counter()
        if self.tokenizer is None:
            if not cfg.tokenizer:
                raise ConfigError("semantic codec: set codec.tokenizer to the folder of a trained s3_asr tokenizer "
                                  "(the train_tokenizer stage's, e.g. exp/valle/train_tokenizer)")
            from ttsframe.tokenizers.s3_asr.io import load_tokenizer

            self.tokenizer = load_tokenizer(cfg.tokenizer, self.device)
        frames, tokens, seconds = [], [], 0.0
        for wav in wavs:
            if seconds >= cfg.fit_max_seconds:
                break
            wav = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.device).reshape(1, -1)
            seconds += wav.shape[-1] / self.sample_rate
            mel, per_frame = self._analyse(wav, full_lengths(wav, None))
            frames.append(mel[0])
            tokens.append(per_frame[0])
        x, ids = torch.cat(frames), torch.cat(tokens)  # (N, D), (N,)
        if x.shape[0] < cfg.codebook_size:
            raise UserError(f"semantic codec: fit got {x.shape[0]} frames ({seconds:.1f} s of audio), fewer than "
                            f"codebook_size={cfg.codebook_size}; give it more audio")
        self.mean = x.double().mean(0).float()
        self.std = x.double().std(0, unbiased=False).clamp_min(1e-2).float()
        x = (x - self.mean) / self.std
        vocab = self.tokenizer.vocab_size
        counts = torch.bincount(ids, minlength=vocab).to(x.dtype)  # (V,)
        sums = torch.zeros(vocab, x.shape[1], device=x.device).index_add_(0, ids, x)
        self.token_means = sums / counts.clamp_min(1)[:, None]  # unseen tokens: 0 (the mean frame)
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        chosen = torch.randperm(x.shape[0], generator=gen, device=self.device)[: cfg.fit_max_frames]
        residual = (x - self.token_means[ids])[chosen]
        if self.n_codebooks > 1:
            self.residual, _ = fit_rvq(residual, self.n_codebooks - 1, cfg.codebook_size, cfg.kmeans_iters, gen)
        else:
            self.residual = residual.new_zeros(0, cfg.codebook_size, x.shape[1])
        sample_codes = torch.cat([ids[chosen, None], rvq_encode(residual, self.residual)], 1) \
            if self.n_codebooks > 1 else ids[chosen, None]
        self.fit_report = {
            "seconds": round(seconds, 2), "frames": int(x.shape[0]), "kmeans_frames": int(len(chosen)),
            "tokens_used": int((counts > 0).sum()), "token_vocab": vocab,
            "logmel_l1_per_k": [round(float(((self._sum(sample_codes[:, :k]) - x[chosen]) * self.std).abs().mean()), 4)
                                for k in range(1, self.n_codebooks + 1)],
            "fit_seconds": round(time.perf_counter() - start, 2),
        }
        return self.fit_report

    def _sum(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (N, K') -> normalised frames (N, D): c_1[code_1] + the residual codewords."""
        out = self.token_means[codes[:, 0].clamp(max=self.token_means.shape[0] - 1)]
        if codes.shape[1] > 1:
            out = out + rvq_decode(codes[:, 1:].clamp(max=self.residual.shape[1] - 1), self.residual)
        return out

    # ---- coding -----------------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise UserError("semantic codec is not fitted: call codec.fit(wavs) or codec.load(path) first")

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) -> codes (B, K, T) long: the speech tokens, then the residual codes."""
        self._require_fitted()
        wav = wav.to(self.device)
        lengths = full_lengths(wav, lengths)
        mel, tokens = self._analyse(wav, lengths)  # (B, T, D), (B, T)
        b, t, d = mel.shape
        x = ((mel - self.mean) / self.std).reshape(b * t, d)
        flat = tokens.reshape(b * t)
        codes = [flat[:, None]]
        if self.n_codebooks > 1:
            codes.append(rvq_encode(x - self.token_means[flat], self.residual))
        return torch.cat(codes, 1).reshape(b, t, -1).transpose(1, 2)  # (B, K, T)

    @torch.inference_mode()
    def decode_mel(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K', T), K' <= K -> log-mel (B, D, T)."""
        self._require_fitted()
        b, k, t = codes.shape
        if k > self.n_codebooks:
            raise ValueError(f"got {k} codebooks, the codec has {self.n_codebooks}")
        flat = codes.to(self.device).long().transpose(1, 2).reshape(b * t, k)
        mel = self._sum(flat) * self.std + self.mean  # (B*T, D)
        return mel.reshape(b, t, -1).transpose(1, 2)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K', T) -> wav (B, T * hop)."""
        return self.vocoder(self.decode_mel(codes))

    # ---- persistence ------------------------------------------------------------------------

    def _settings(self) -> dict:
        return {"mel": self.mel_config.to_dict(), "n_codebooks": self.n_codebooks,
                "residual_codebook_size": self.config.codebook_size}

    def save(self, path: str | Path) -> None:
        """Statistics, token means, residual codebooks and the tokenizer (weights + its json) in one
        safetensors file."""
        from ttsframe.tokenizers.s3_asr.io import tokenizer_state

        self._require_fitted()
        tokenizer_meta, tokenizer_weights = tokenizer_state(self.tokenizer)
        write_state(path, FORMAT, {**self._settings(), "tokenizer": tokenizer_meta, "fit": self.fit_report},
                    {"mean": self.mean, "std": self.std, "token_means": self.token_means, "residual": self.residual,
                     **{TOKENIZER_PREFIX + k: v for k, v in tokenizer_weights.items()}})

    def load(self, path: str | Path) -> "SemanticCodec":
        """Reads a state written by `save`; fails if it was fitted with other settings."""
        from ttsframe.tokenizers.s3_asr.io import tokenizer_from_state

        meta, tensors = read_state(path, FORMAT, "semantic codec")
        check_mel_compatible(meta["mel"], self.mel_config, f"{path} vs the codec config")
        check_settings(path, meta, {"n_codebooks": self.n_codebooks,
                                    "residual_codebook_size": self.config.codebook_size})
        weights = {k[len(TOKENIZER_PREFIX):]: v for k, v in tensors.items() if k.startswith(TOKENIZER_PREFIX)}
        self.tokenizer = tokenizer_from_state(meta["tokenizer"], weights, self.device)
        self.mean, self.std, self.token_means, self.residual = (
            tensors[k].to(self.device) for k in ("mean", "std", "token_means", "residual"))
        self.fit_report = meta.get("fit", {})
        return self

    def describe(self) -> dict:
        bits = math.log2(self.tokenizer.vocab_size) if self.tokenizer is not None else 0.0
        bits += (self.n_codebooks - 1) * math.log2(self.config.codebook_size)
        return {
            "name": "semantic", "sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
            **self._settings(), "codebook_size": self.codebook_size, "seed": self.config.seed,
            "vocoder": self.config.vocoder,
            "tokenizer": None if self.tokenizer is None else {  # not its folder: the fitted file carries it
                "name": "s3_asr", "frame_rate": self.tokenizer.frame_rate, "vocab_size": self.tokenizer.vocab_size,
                "sha256": self.tokenizer.checksum},
            "bits_per_second": round(self.frame_rate * bits, 1),
        }
