"""The Codec interface: waveform <-> acoustic representation (discrete codes or continuous frames).

Codecs that are fitted by the framework (the spectral codec) add the `FittableCodec` methods.
The tokenize stage uses them like this:

    codec = build_codec(cfg.codec)
    if codec.needs_fit:
        path = shard_dir / "codec.safetensors"
        if path.is_file():
            codec.load(path)                      # resume: the fitted state from before
        else:
            codec.fit(train_wavs)                 # Iterable[np.ndarray (T,) at codec.sample_rate]
            codec.save(path)                      # atomic write
    codes = codec.encode(wav, lengths)            # then trim item i to codec.frames_for(lengths[i])
"""

from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Codec(Protocol):
    """What every codec provides.

    Discrete codecs return integer codes (B, K, T) with K = n_codebooks; continuous codecs
    (log-mel) return float frames (B, n_mels, T) and report n_codebooks = 0. Outputs are on the
    codec's device. With `lengths`, item i is valid for its first `frames_for(lengths[i])` frames;
    the frames after that are padding and the caller trims them.
    """

    sample_rate: int  # Hz of the waveforms it takes and returns
    frame_rate: float  # frames per second of the representation
    n_codebooks: int  # K; 0 for continuous representations
    codebook_size: int  # entries per codebook; 0 for continuous representations
    needs_fit: bool  # True only for codecs fitted by the framework (see FittableCodec)

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) float at `sample_rate`, lengths (B,) samples -> codes (B, K, T) or frames (B, D, T)."""
        ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, T) or frames (B, D, T) -> wav (B, T * samples per frame)."""
        ...

    def frames_for(self, num_samples: int) -> int:
        """Number of frames `encode` yields for a waveform of `num_samples` samples (exact)."""
        ...

    def describe(self) -> dict:
        """JSON-serialisable description (name and settings) stored with shards and releases."""
        ...


@runtime_checkable
class FittableCodec(Codec, Protocol):
    """A codec whose parameters the framework fits on the train split (needs_fit = True)."""

    @property
    def is_fitted(self) -> bool: ...

    def fit(self, wavs: Iterable[np.ndarray]) -> dict:
        """Fits on waveforms (T,) at `sample_rate`; returns a small report (JSON-serialisable)."""
        ...

    def save(self, path) -> None:
        """Writes the fitted state to one safetensors file (atomically, no pickle)."""
        ...

    def load(self, path) -> "FittableCodec":
        """Reads a state written by `save`; fails if it was fitted with other settings. Returns self."""
        ...


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cpu' / 'cuda' / 'cuda:1' as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def full_lengths(wav: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """lengths (B,) long on wav's device; all T_wav when None."""
    if lengths is None:
        return torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long, device=wav.device)
    return torch.as_tensor(lengths, dtype=torch.long, device=wav.device)


def encode_utterances(codec: Codec, wavs: list[np.ndarray], batch_seconds: float) -> list[torch.Tensor]:
    """Encodes waveforms (T_i,) at `codec.sample_rate` in length-sorted batches of at most
    `batch_seconds` of padded audio (one item at least), each trimmed to frames_for(T_i).

    Returns, in input order, CPU tensors: codes (K, T_i') for discrete codecs, frames (D, T_i')
    for continuous ones.
    """
    limit = max(1, int(batch_seconds * codec.sample_rate))
    order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]), reverse=True)
    out: list[torch.Tensor | None] = [None] * len(wavs)
    start = 0
    while start < len(order):
        longest = max(1, len(wavs[order[start]]))
        size = max(1, min(len(order) - start, limit // longest))
        batch = order[start: start + size]
        lengths = torch.tensor([len(wavs[i]) for i in batch])
        padded = torch.zeros(len(batch), int(lengths.max()))
        for row, i in enumerate(batch):
            padded[row, : len(wavs[i])] = torch.as_tensor(wavs[i], dtype=torch.float32)
        codes = codec.encode(padded, lengths).cpu()  # (b, K or D, T)
        for row, i in enumerate(batch):
            out[i] = codes[row, :, : codec.frames_for(len(wavs[i]))].clone()
        start += size
    return out
