"""Vocoder training data straight from the manifests: random fixed-length waveform segments.

Train: an endless stream of batches (B, segment_size) float32 at the mel config's sample rate.
Batch i of rank r depends only on (seed, r, i): its utterances (uniform, with replacement) and
the segment offsets come from a generator seeded with `mixed_seed(seed, r, i)`. So the stream is
the same however many dataloader workers read it (worker w makes batches i = w mod workers, and
the DataLoader takes them round-robin), and a resumed run starts at batch `start` without reading
the batches before it. Utterances shorter than a segment are zero-padded at the end.

Dev: the first `num_val_utterances` dev utterances, whole (cut at `max_val_seconds`, trimmed to
a whole number of hops), one per batch, shared out over the ranks (each rank gets at least one).
Mels are computed by the task, on its device.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ttsframe.data.audio import load_audio
from ttsframe.data.manifest import Utterance, read_manifest
from ttsframe.errors import UserError
from ttsframe.training.resume import mixed_seed


def read_audio(utt: Utterance, sample_rate: int) -> np.ndarray:
    """(T,) float32 at `sample_rate` (the manifest's start/end window when it has one)."""
    return load_audio(utt.audio, sample_rate, utt.start, utt.end)[0]


def read_splits(manifest_dir: Path, num_val_utterances: int) -> tuple[list[Utterance], list[Utterance]]:
    """(train utterances, the first `num_val_utterances` dev ones; train ones when dev is empty)."""
    train_path, dev_path = Path(manifest_dir) / "train.jsonl", Path(manifest_dir) / "dev.jsonl"
    if not train_path.is_file():
        raise UserError(f"{train_path} missing: run the prepare stage first")
    train = read_manifest(train_path)
    dev = read_manifest(dev_path) if dev_path.is_file() else []
    if not dev:
        print(f"vocoder data: no dev utterances in {dev_path}; validating on train utterances")
        dev = train
    return train, dev[:num_val_utterances]


class SegmentBatches(IterableDataset):
    """Endless batches (batch_size, segment_size) of random segments; batch i is a function of (seed, rank, i).

    Args:
        utterances: the train manifest.
        sample_rate: of the segments (audio is resampled to it).
        segment_size: samples per segment.
        batch_size: segments per batch.
        seed, rank: the stream's identity.
        start: the first batch number (after a resume, the batches already trained on).
    """

    def __init__(self, utterances: list[Utterance], sample_rate: int, segment_size: int, batch_size: int,
                 seed: int, rank: int = 0, start: int = 0):
        if not utterances:
            raise UserError("vocoder training: the train manifest is empty")
        self.utterances, self.sample_rate = utterances, sample_rate
        self.segment_size, self.batch_size = segment_size, batch_size
        self.seed, self.rank, self.start = seed, rank, start

    def segment(self, utt: Utterance, rng: np.random.Generator) -> np.ndarray:
        wav = read_audio(utt, self.sample_rate)
        if len(wav) >= self.segment_size:
            offset = int(rng.integers(0, len(wav) - self.segment_size + 1))
            return wav[offset: offset + self.segment_size]
        return np.pad(wav, (0, self.segment_size - len(wav)))

    def batch(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng(mixed_seed(self.seed, self.rank, index))
        picks = rng.integers(0, len(self.utterances), size=self.batch_size)
        return torch.from_numpy(np.stack([self.segment(self.utterances[i], rng) for i in picks]))  # (B, S)

    def __iter__(self):
        worker = get_worker_info()
        index, step = (self.start, 1) if worker is None else (self.start + worker.id, worker.num_workers)
        while True:
            yield self.batch(index)
            index += step


class WholeUtterances(Dataset):
    """Dev utterances, whole: item i is wav (1, N) with N a multiple of `hop_length`."""

    def __init__(self, utterances: list[Utterance], sample_rate: int, hop_length: int, max_seconds: float):
        self.utterances, self.sample_rate, self.hop = utterances, sample_rate, hop_length
        self.max_samples = int(max_seconds * sample_rate) // hop_length * hop_length

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, i: int) -> torch.Tensor:
        wav = read_audio(self.utterances[i], self.sample_rate)[: self.max_samples]
        wav = wav[: len(wav) // self.hop * self.hop]
        return torch.from_numpy(np.ascontiguousarray(wav))[None]  # (1, N)


class VocoderData(L.LightningDataModule):
    """Train segments and dev utterances from `<manifest_dir>/{train,dev}.jsonl`.

    Args:
        manifest_dir: the prepare stage's output (`exp/<recipe>/data`).
        sample_rate, hop_length: of the mel configuration.
        segment_size, batch_size: of the training batches.
        seed: of the training stream.
        num_workers: dataloader processes per rank.
        num_val_utterances, max_val_seconds: the dev set.
        position: the run's `DataPosition` (its `restored` batch count starts the stream); None: 0.
    """

    def __init__(self, manifest_dir: Path, sample_rate: int, hop_length: int, segment_size: int, batch_size: int,
                 seed: int, num_workers: int = 0, num_val_utterances: int = 4, max_val_seconds: float = 10.0,
                 position=None):
        super().__init__()
        if segment_size % hop_length:
            raise UserError(f"vocoder.segment_size {segment_size} is not a multiple of the hop length {hop_length}")
        self.train_utterances, self.val_utterances = read_splits(manifest_dir, num_val_utterances)
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.segment_size, self.batch_size, self.seed = segment_size, batch_size, seed
        self.num_workers, self.max_val_seconds, self.position = num_workers, max_val_seconds, position

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, _ = self._rank()
        start = self.position.restored if self.position is not None else 0
        stream = SegmentBatches(self.train_utterances, self.sample_rate, self.segment_size, self.batch_size,
                                self.seed, rank, start)
        return DataLoader(stream, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        # Each rank takes every world-th utterance; with fewer utterances than ranks some are repeated
        # (a rank with an empty loader stops Lightning).
        val = self.val_utterances
        mine = [val[i % len(val)] for i in range(rank, max(len(val), world), world)]
        return DataLoader(WholeUtterances(mine, self.sample_rate, self.hop_length, self.max_val_seconds),
                          batch_size=None, num_workers=0)
