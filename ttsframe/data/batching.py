"""Batchers: an iterable of samples -> an iterator of batches (lists of samples).

`DynamicBucketer` caps the padded cost of a batch (batch size x longest sample), grouping samples
of similar length so little of that cost is padding. `FixedBatcher` takes a fixed number of
consecutive samples, for comparison. Both are deterministic and keep no state between calls.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence


def sample_length(sample: dict) -> int:
    """Default length: acoustic frames + text tokens (the sequence a decoder-only model sees)."""
    return int(sample["frames"]) + len(sample["tokens"])


def frames_length(sample: dict) -> int:
    return int(sample["frames"])


def padded_cost(batch: list[dict], length_fn: Callable[[dict], int] = sample_length) -> int:
    """B x longest: the positions a padded batch of these samples occupies."""
    return len(batch) * max(length_fn(s) for s in batch)


def estimate_boundaries(lengths: Sequence[int], num_buckets: int) -> list[int]:
    """Upper bucket edges (exclusive, ascending) so each bucket holds ~ the same total length."""
    ordered = sorted(lengths)
    total = sum(ordered)
    edges, acc, k = [], 0, 1
    for n in ordered:
        acc += n
        while k < num_buckets and acc >= total * k / num_buckets:
            if not edges or n + 1 > edges[-1]:
                edges.append(n + 1)
            k += 1
    return edges[:-1] if edges and edges[-1] > ordered[-1] else edges


@dataclass
class _Bucket:
    items: list[dict] = field(default_factory=list)
    longest: int = 0

    def cost_with(self, n: int) -> int:
        return (len(self.items) + 1) * max(self.longest, n)

    def add(self, item: dict, n: int) -> None:
        self.items.append(item)
        self.longest = max(self.longest, n)

    def take(self) -> list[dict]:
        items, self.items, self.longest = self.items, [], 0
        return items


@dataclass
class DynamicBucketer:
    """Length-bucketed batches whose padded cost (B x longest) stays <= max_frames.

    A sample goes to the bucket of its length; a bucket is emitted as a batch as soon as the
    next sample would take its cost past `max_frames` (or its size past `max_batch_size`).
    Inside a bucket lengths differ at most by the bucket width, which bounds the padding. A
    sample longer than `max_frames` alone becomes a batch of one. When more than `buffer_size`
    samples are held, the fullest bucket is emitted early. At the end of the input the
    leftovers are emitted (partial batches), or dropped when `drop_last` is set. On an endless
    input (training) the buffer spans epoch boundaries when a consumer's share of an epoch is
    smaller than `buffer_size` (tiny corpora): batches then mix neighbouring epochs.

    Args:
        max_frames: cap on B x longest, in units of `length_fn`.
        boundaries: upper bucket edges (exclusive, ascending); None -> estimated from the first
            `estimate_from` samples as `num_buckets` buckets of equal total length.
        num_buckets: used when `boundaries` is None.
        max_batch_size: cap on B (None: no cap).
        buffer_size: samples held across all buckets at most.
        drop_last: drop the partial batches left at the end of the input (never for evaluation).
        length_fn: sample -> length (default frames + tokens).
        estimate_from: samples read before the first batch to estimate boundaries (<= buffer_size).
    """

    max_frames: int
    boundaries: Sequence[int] | None = None
    num_buckets: int = 10
    max_batch_size: int | None = None
    buffer_size: int = 2000
    drop_last: bool = False
    length_fn: Callable[[dict], int] = sample_length
    estimate_from: int = 500

    def __call__(self, samples: Iterable[dict]) -> Iterator[list[dict]]:
        samples = iter(samples)
        head: list[dict] = []
        edges = list(self.boundaries) if self.boundaries is not None else None
        if edges is None:
            head = list(itertools.islice(samples, min(self.estimate_from, self.buffer_size)))
            edges = estimate_boundaries([self.length_fn(s) for s in head], self.num_buckets) if head else []
        buckets = [_Bucket() for _ in range(len(edges) + 1)]
        held = 0
        for sample in itertools.chain(head, samples):
            n = self.length_fn(sample)
            bucket = buckets[bisect.bisect_right(edges, n)]
            if bucket.items and not self._fits(bucket, n):
                held -= len(bucket.items)
                yield bucket.take()
            bucket.add(sample, n)
            held += 1
            if held > self.buffer_size:
                fullest = max(buckets, key=lambda b: len(b.items) * b.longest)
                held -= len(fullest.items)
                yield fullest.take()
        if not self.drop_last:
            for bucket in buckets:
                if bucket.items:
                    yield bucket.take()

    def _fits(self, bucket: _Bucket, n: int) -> bool:
        if self.max_batch_size is not None and len(bucket.items) >= self.max_batch_size:
            return False
        return bucket.cost_with(n) <= self.max_frames


@dataclass
class FixedBatcher:
    """Batches of `batch_size` consecutive samples; the last one partial unless `drop_last`."""

    batch_size: int
    drop_last: bool = False

    def __call__(self, samples: Iterable[dict]) -> Iterator[list[dict]]:
        samples = iter(samples)
        while batch := list(itertools.islice(samples, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch
