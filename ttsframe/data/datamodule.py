"""Lightning data module over tokenized shards: dynamic-batched, rank- and worker-split loaders.

Training cycles epochs inside the stream (`train_infinite=True`, the default): the step budget
(`max_steps`) ends training, ranks never run dry, and persistent workers are fine; validation and
checkpoints then go by steps (`val_check_interval=<int>`, `every_n_train_steps`). With
`train_infinite=False` each pass is one epoch; its shuffle follows `trainer.current_epoch`
because the loader sets the epoch before its workers copy the dataset, which is why persistent
workers are refused there, and it is refused under DDP: ranks get equal samples but, batched by
frames, not always equal batch counts, and a rank that stops early hangs the gradient all-reduce.

Evaluation loaders make one unshuffled pass, split over ranks, so ranks may run a few batches
more or fewer. Under DDP nothing may therefore run a collective per validation batch: log with
`sync_dist=True` only for epoch-level values, and build the DDP strategy with
`broadcast_buffers=False` (during `fit`, Lightning runs validation through the DDP wrapper, whose
forward broadcasts module buffers when there are any).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ttsframe.data.batching import DynamicBucketer
from ttsframe.data.dataset import BatchedStream, ShardStream
from ttsframe.data.shards import read_index
from ttsframe.text.base import WORD_BOUNDARY
from ttsframe.text.vocab import Vocabulary


class _EpochLoader(DataLoader):
    """Sets the dataset's epoch from `epoch_fn` whenever a pass starts (workers copy it then)."""

    epoch_fn: Callable[[], int] | None = None

    def __iter__(self):
        if self.epoch_fn is not None:
            self.dataset.set_epoch(self.epoch_fn())
        return super().__iter__()


class ShardDataModule(L.LightningDataModule):
    """Train/dev/test loaders over `shard_dir`, plus what the index says about the data.

    Attributes read from the train index: `feature` ("codes" | "mel"), `codec` (the codec's
    description), `vocab_path`, `vocab_size`, `n_codebooks`, `codebook_size`, `frame_rate`.
    Batches are `ttsframe.data.collate.Batch`; `max_frames` caps B x (frames + tokens).
    `joined_rows`: the share of training items that open a row joining two utterances of one
    speaker, the zero-shot layout (`ttsframe.data.joining`); dev and test rows stay single.
    `spk_from_other_utterance`: training rows take another utterance's speaker embedding
    (`ttsframe.data.speaker_swap`).
    """

    def __init__(self, shard_dir: str | Path, train_split: str = "train", val_split: str | None = "dev",
                 test_split: str | None = "test", *, max_frames: int = 20000, max_batch_size: int | None = None,
                 num_buckets: int = 10, bucket_boundaries: Sequence[int] | None = None, buffer_size: int = 2000,
                 shuffle_buffer: int = 1000, num_workers: int = 2, seed: int = 0, train_infinite: bool = True,
                 drop_last: bool = False, persistent_workers: bool = False, pin_memory: bool | None = None,
                 joined_rows: float = 0.0, spk_from_other_utterance: bool = False):
        super().__init__()
        if not 0.0 <= joined_rows < 1.0:
            raise ValueError(f"joined_rows must be in [0, 1), got {joined_rows}")
        if persistent_workers and not train_infinite:
            raise ValueError("persistent_workers needs train_infinite=True: persistent workers keep "
                             "the dataset of the first epoch, so every epoch would repeat its order")
        self.shard_dir = Path(shard_dir)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.max_frames, self.max_batch_size = max_frames, max_batch_size
        self.num_buckets, self.bucket_boundaries, self.buffer_size = num_buckets, bucket_boundaries, buffer_size
        self.shuffle_buffer, self.num_workers, self.seed = shuffle_buffer, num_workers, seed
        self.train_infinite, self.drop_last, self.persistent_workers = train_infinite, drop_last, persistent_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        index = read_index(self.shard_dir, train_split)
        self.index = index
        self.feature: str = index.get("feature") or ("codes" if index.get("n_codebooks") else "mel")
        self.codec: dict = index.get("codec", {})
        self.vocab_path: Path | None = self.shard_dir / index["vocab"] if index.get("vocab") else None
        self.vocab_size: int | None = index.get("vocab_size")
        self.n_codebooks: int | None = index.get("n_codebooks")
        self.codebook_size: int | None = index.get("codebook_size")
        self.frame_rate: float | None = index.get("frame_rate")
        self.joined_rows, self.spk_from_other_utterance = joined_rows, spk_from_other_utterance

    def ddp_position(self) -> tuple[int, int]:
        """(global rank, world size): the trainer's when attached, else torch.distributed's."""
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def boundary_id(self) -> int | None:
        """The vocabulary's word-boundary id (what joined rows put between their texts), if it has one."""
        if self.vocab_path is None or not self.vocab_path.is_file():
            return None
        vocab = Vocabulary.load(self.vocab_path)
        return vocab.encode([WORD_BOUNDARY])[0] if WORD_BOUNDARY in vocab else None

    def stream(self, split: str, train: bool) -> ShardStream:
        rank, world_size = self.ddp_position()
        join = dict(join_share=self.joined_rows, boundary_id=self.boundary_id(), join_max_length=self.max_frames) \
            if train and self.joined_rows > 0 else {}
        if train:
            join["spk_from_other"] = self.spk_from_other_utterance
        return ShardStream(self.shard_dir, split, shuffle=train, shuffle_buffer=self.shuffle_buffer,
                           seed=self.seed, infinite=train and self.train_infinite, rank=rank, world_size=world_size,
                           **join)

    def batcher(self, train: bool) -> DynamicBucketer:
        return DynamicBucketer(max_frames=self.max_frames, boundaries=self.bucket_boundaries,
                               num_buckets=self.num_buckets, max_batch_size=self.max_batch_size,
                               buffer_size=self.buffer_size, drop_last=train and self.drop_last)

    def loader(self, split: str, train: bool) -> DataLoader:
        dataset = BatchedStream(self.stream(split, train), self.batcher(train))
        loader = _EpochLoader(dataset, batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory,
                              persistent_workers=self.persistent_workers and self.num_workers > 0)
        if train and not self.train_infinite:
            loader.epoch_fn = lambda: self.trainer.current_epoch if self.trainer is not None else dataset.stream.epoch
        return loader

    def train_dataloader(self) -> DataLoader:
        if not self.train_infinite and self.ddp_position()[1] > 1:
            raise ValueError("train_infinite=False is for single-process runs: under DDP ranks may get "
                             "unequal batch counts and hang; use train_infinite=True with max_steps")
        return self.loader(self.splits["train"], train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self.loader(self.splits["val"], train=False) if self.splits["val"] else []

    def test_dataloader(self) -> DataLoader | list:
        return self.loader(self.splits["test"], train=False) if self.splits["test"] else []
