"""DynamicBucketer and FixedBatcher: caps respected, nothing lost, deterministic, less padding."""

from collections import Counter

import numpy as np
import pytest

from ttsframe.data.batching import (DynamicBucketer, FixedBatcher, estimate_boundaries, frames_length,
                                    padded_cost, sample_length)


def fake_samples(n: int = 500, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    frames = np.clip(rng.lognormal(np.log(300), 0.6, n), 75, 1125).astype(int)
    return [{"id": f"u{i}", "frames": int(t), "tokens": [1] * int(t // 6)} for i, t in enumerate(frames)]


def padding_share(batches: list[list[dict]]) -> float:
    real = sum(s["frames"] for b in batches for s in b)
    return 1 - real / sum(padded_cost(b, frames_length) for b in batches)


@pytest.mark.parametrize("max_batch_size", [None, 7])
def test_every_sample_once_and_caps_respected(max_batch_size):
    samples = fake_samples()
    bucketer = DynamicBucketer(max_frames=4000, num_buckets=6, buffer_size=100, max_batch_size=max_batch_size)
    batches = list(bucketer(samples))
    assert Counter(s["id"] for b in batches for s in b) == Counter(s["id"] for s in samples)
    for b in batches:
        assert len(b) == 1 or padded_cost(b) <= 4000
        assert max_batch_size is None or len(b) <= max_batch_size


def test_deterministic():
    bucketer = DynamicBucketer(max_frames=3000, num_buckets=5, buffer_size=64)
    first = [[s["id"] for s in b] for b in bucketer(fake_samples())]
    assert first == [[s["id"] for s in b] for b in bucketer(fake_samples())]


def test_explicit_boundaries_keep_each_batch_inside_one_bucket():
    edges = [200, 400, 700]
    for b in DynamicBucketer(max_frames=5000, boundaries=edges)(fake_samples()):
        buckets = {int(np.searchsorted(edges, sample_length(s), side="right")) for s in b}
        assert len(buckets) == 1


def test_sample_longer_than_the_cap_is_a_batch_of_one():
    samples = [{"id": "long", "frames": 900, "tokens": []}]
    samples += [{"id": str(i), "frames": 100, "tokens": []} for i in range(5)]
    batches = list(DynamicBucketer(max_frames=500, boundaries=[])(samples))
    assert [len(b) for b in batches] == [1, 5]


def test_buffer_size_bounds_the_samples_held():
    consumed, emitted, buffer_size = [0], 0, 50

    def counting(samples):
        for s in samples:
            consumed[0] += 1
            yield s

    for b in DynamicBucketer(max_frames=20000, num_buckets=8, buffer_size=buffer_size)(counting(fake_samples())):
        assert consumed[0] - emitted <= buffer_size + 1
        emitted += len(b)
    assert emitted == 500


def test_drop_last_drops_only_the_leftovers():
    samples = fake_samples()
    kept = sum(len(b) for b in DynamicBucketer(max_frames=4000, num_buckets=4, drop_last=True)(samples))
    all_ = sum(len(b) for b in DynamicBucketer(max_frames=4000, num_buckets=4)(samples))
    assert all_ == 500 and 500 - 4 * 4000 // 75 <= kept < 500


def test_estimated_boundaries_split_the_total_length_evenly():
    lengths = [int(s["frames"]) for s in fake_samples(2000)]
    edges = estimate_boundaries(lengths, 4)
    assert len(edges) == 3 and edges == sorted(edges)
    totals = np.bincount(np.searchsorted(edges, lengths, side="right"), weights=lengths)
    assert totals.min() > 0.2 * sum(lengths)
    assert estimate_boundaries([5, 5, 5], 4) == []


def test_fixed_batcher_and_bucketing_pad_less():
    samples = fake_samples(2000)
    dynamic = list(DynamicBucketer(max_frames=8000, num_buckets=10, buffer_size=500)(samples))
    size = round(len(samples) / len(dynamic))
    fixed = list(FixedBatcher(size)(samples))
    assert [len(b) for b in fixed[:-1]] == [size] * (len(fixed) - 1) and sum(map(len, fixed)) == 2000
    assert len(list(FixedBatcher(size, drop_last=True)(samples))) == 2000 // size
    assert padding_share(dynamic) < 0.5 * padding_share(fixed)
