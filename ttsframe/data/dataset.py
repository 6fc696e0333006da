"""One split's shards as a stream of samples, read exactly once per epoch across ranks and workers.

How an epoch is split. The index gives every shard's sample count, so the split is computed, not
discovered: the shards are put in an order (seeded shuffle of `seed + epoch` for training, index
order otherwise) and their samples are seen as one concatenated sequence of N samples. Rank r of
R takes the contiguous range `[r*N//R, (r+1)*N//R)`, and worker w of W inside that rank takes the
same kind of sub-range of it. The ranges are disjoint and cover all N samples whatever N, R, W and
the shard count are, so one epoch yields every sample exactly once; rank sample counts differ by
at most one, and so do worker counts inside a rank. A consumer reads whole shards except at most
one at each end of its range; the samples before its start are skipped without being decoded,
and reading stops at its end.

Uneven counts: ranks are balanced in samples, not in frames, so with dynamic batching two ranks
may make a few batches more or fewer in a finite pass (frames per rank even out only
statistically). Training therefore cycles epochs (`infinite=True`) and a step budget ends it; a
finite evaluation pass must not run per-step collectives (all_reduce in `validation_step`). With
N < R a rank gets no samples: its stream is empty (in infinite mode too, rather than spinning).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info
from webdataset.autodecode import Decoder, basichandlers
from webdataset.gopen import gopen
from webdataset.tariterators import base_plus_ext, tar_file_iterator

from ttsframe.data.joining import join_same_speaker
from ttsframe.data.speaker_swap import speaker_embedding_from_another
from ttsframe.data.collate import collate
from ttsframe.data.shards import read_index, shard_urls

# What a shard sample holds: text ids, codec codes or log-mel, optional speech-tokenizer ids and
# speaker embedding (recipes with a speech tokenizer), and its metadata.
MEMBER_EXTS = ("tokens.npy", "codes.npy", "mel.npy", "speech.npy", "spk.npy", "meta.json")


@dataclass(frozen=True)
class Part:
    """Samples [start, stop) of the shard at position `shard` of the index."""

    shard: int
    start: int
    stop: int


def shard_order(num_shards: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The order in which an epoch walks the shards; the same on every rank and worker."""
    order = list(range(num_shards))
    if shuffle:
        np.random.default_rng([seed, epoch]).shuffle(order)
    return order


def even_range(total: int, part: int, parts: int) -> tuple[int, int]:
    """[start, stop) of `part` when `total` items are cut into `parts` sizes differing by <= 1."""
    return total * part // parts, total * (part + 1) // parts


def assign_parts(counts: list[int], order: list[int], rank: int, world_size: int,
                 worker: int, num_workers: int) -> list[Part]:
    """The shard parts one consumer (rank, worker) reads in an epoch; see the module docstring."""
    lo, hi = even_range(sum(counts), rank, world_size)
    a, b = even_range(hi - lo, worker, num_workers)
    first, last = lo + a, lo + b  # this consumer's range in the concatenated sequence
    parts, offset = [], 0
    for shard in order:
        start, stop = max(first, offset), min(last, offset + counts[shard])
        if start < stop:
            parts.append(Part(shard, start - offset, stop - offset))
        offset += counts[shard]
    return parts


class _PartDone(Exception):
    """Raised by the member filter to end a shard read at the end of the part."""


def _split_name(fname: str) -> tuple[str, str]:
    """(key, extension) of a tar member; keys may contain dots (utterance ids often do)."""
    for ext in MEMBER_EXTS:
        if fname.endswith("." + ext):
            return fname[: -len(ext) - 1], ext
    key, ext = base_plus_ext(fname)
    return key or fname, (ext or "").lower()


class _MemberFilter:
    """`select_files` for webdataset's tar iterator: counts samples, keeps those in [start, stop)."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop, self.index, self.key = start, stop, -1, None

    def __call__(self, fname: str) -> bool:
        key = _split_name(fname)[0]
        if key != self.key:
            self.key, self.index = key, self.index + 1
            if self.index >= self.stop:
                raise _PartDone
        return self.index >= self.start  # members before `start` are skipped, not read into memory


def read_part(url: str, start: int, stop: int) -> Iterator[dict]:
    """Raw samples ({__key__, ext: bytes}) number start..stop-1 of the shard at `url`."""
    stream = gopen(url)
    sample: dict | None = None
    count = 0
    try:
        for member in tar_file_iterator(stream, select_files=_MemberFilter(start, stop)):
            key, ext = _split_name(member["fname"])
            if sample is None or key != sample["__key__"]:
                if sample is not None:
                    count += 1
                    yield sample
                sample = {"__key__": key}
            sample[ext] = member["data"]
    except _PartDone:
        pass
    finally:
        stream.close()
    if sample is not None:
        count += 1
        yield sample
    if count != stop - start:
        raise ValueError(f"{url}: the index promises samples {start}..{stop - 1} but the shard holds "
                         f"{start + count}; the index is stale: re-run the tokenize stage")


_decoder = Decoder([basichandlers])  # .npy -> np.ndarray, .json -> dict


def to_item(raw: dict) -> dict:
    """Decoded shard sample -> {id, speaker, tokens (L,) long, codes (K, T) long | mel (T, D) float,
    frames, and where the shard has them speech (S,) long, spk (E,) float}."""
    sample = _decoder(raw)
    meta = sample["meta.json"]
    item = {"id": meta.get("id", sample["__key__"]), "speaker": meta.get("speaker", ""),
            "tokens": torch.from_numpy(sample["tokens.npy"].astype(np.int64))}
    if "codes.npy" in sample:
        item["codes"] = torch.from_numpy(sample["codes.npy"].astype(np.int64))  # (K, T)
        item["frames"] = item["codes"].shape[1]
    elif "mel.npy" in sample:
        item["mel"] = torch.from_numpy(sample["mel.npy"].astype(np.float32))  # (T, D)
        item["frames"] = item["mel"].shape[0]
    else:
        raise KeyError(f"shard sample {sample['__key__']} has neither codes.npy nor mel.npy")
    if "speech.npy" in sample:
        item["speech"] = torch.from_numpy(sample["speech.npy"].astype(np.int64))  # (S,)
    if "spk.npy" in sample:
        item["spk"] = torch.from_numpy(sample["spk.npy"].astype(np.float32))  # (E,)
    return item


def shuffle_buffer(items: Iterable[dict], size: int, rng: np.random.Generator) -> Iterator[dict]:
    """Yields `items` in a seeded random order, holding at most `size` of them."""
    buf: list[dict] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        i = int(rng.integers(size))
        buf[i], item = item, buf[i]
        yield item
    rng.shuffle(buf)
    yield from buf


def _default_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ShardStream(IterableDataset):
    """Samples of one split: {id, speaker, tokens (L,), codes (K, T) or mel (T, D), frames}.

    Args:
        shard_dir: folder of `<split>-%06d.tar` and `<split>.index.json`.
        split: split name.
        shuffle: shuffle the shard order (per epoch) and the samples (buffer of `shuffle_buffer`).
        seed: base seed; the order is a function of (seed, epoch, rank, worker) only.
        infinite: cycle epochs forever (training); otherwise one pass (evaluation).
        rank, world_size: DDP position; default torch.distributed's when initialised, else 0 of 1.
        join_share, boundary_id, join_max_length: with shuffle, rows joining two utterances of one
            speaker (`ttsframe.data.joining`): the share of items that open one, the word-boundary
            id between the texts, the longest joined row (frames + tokens).
        spk_from_other: with shuffle, each row's speaker embedding is another utterance's of its
            speaker (`ttsframe.data.speaker_swap`).
    """

    def __init__(self, shard_dir: str | Path, split: str, *, shuffle: bool = False,
                 shuffle_buffer: int = 1000, seed: int = 0, infinite: bool = False,
                 rank: int | None = None, world_size: int | None = None, join_share: float = 0.0,
                 boundary_id: int | None = None, join_max_length: int | None = None, spk_from_other: bool = False):
        super().__init__()
        self.index = read_index(Path(shard_dir), split)
        self.urls = shard_urls(Path(shard_dir), self.index)
        self.counts = [int(s["samples"]) for s in self.index["shards"]]
        self.shuffle, self.buffer, self.seed, self.infinite = shuffle, shuffle_buffer, seed, infinite
        self.rank, self.world_size = _default_rank(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        self.join_share, self.boundary_id, self.join_max_length = join_share, boundary_id, join_max_length
        self.spk_from_other = spk_from_other
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next pass (the first one in infinite mode); changes the shuffle."""
        self.epoch = epoch

    def num_samples(self) -> int:
        """Samples this rank yields per epoch (all its workers together)."""
        lo, hi = even_range(sum(self.counts), self.rank, self.world_size)
        return hi - lo

    def parts(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[Part]:
        order = shard_order(len(self.counts), self.seed, epoch, self.shuffle)
        return assign_parts(self.counts, order, self.rank, self.world_size, worker, num_workers)

    def epoch_items(self, epoch: int, worker: int = 0, num_workers: int = 1) -> Iterator[dict]:
        """One epoch of this consumer's samples, shuffled when `shuffle` is set."""
        parts = self.parts(epoch, worker, num_workers)
        items = map(to_item, (s for p in parts for s in read_part(self.urls[p.shard], p.start, p.stop)))
        if self.shuffle and self.buffer > 1:
            items = shuffle_buffer(items, self.buffer, np.random.default_rng([self.seed, epoch, self.rank, worker]))
        if self.shuffle and self.join_share > 0:
            rng = np.random.default_rng([self.seed, epoch, self.rank, worker, 1])
            items = join_same_speaker(items, self.join_share, rng, self.boundary_id, self.join_max_length)
        if self.shuffle and self.spk_from_other:
            items = speaker_embedding_from_another(items)
        return items

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self.epoch
        if not self.parts(epoch, worker, num_workers):  # sizes do not depend on the epoch
            return
        while True:
            yield from self.epoch_items(epoch, worker, num_workers)
            if not self.infinite:
                return
            epoch += 1


class BatchedStream(IterableDataset):
    """stream -> batcher -> collate inside each dataloader worker; use with DataLoader(batch_size=None)."""

    def __init__(self, stream: ShardStream, batcher: Callable[[Iterable[dict]], Iterator[list[dict]]],
                 collate_fn: Callable[[list[dict]], object] = collate):
        super().__init__()
        self.stream, self.batcher, self.collate_fn = stream, batcher, collate_fn

    def set_epoch(self, epoch: int) -> None:
        self.stream.set_epoch(epoch)

    def __iter__(self) -> Iterator[object]:
        for samples in self.batcher(iter(self.stream)):
            yield self.collate_fn(samples)
