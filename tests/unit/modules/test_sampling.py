"""Sampling: filters keep the right tokens, repetition-aware fallback, seeded determinism."""

import math

import pytest
import torch

from ttsframe.modules.sampling import (
    SamplingOptions,
    repetition_aware_fallback,
    sample_next,
    top_k_filter,
    top_p_filter,
)


def kept(logits):
    return [torch.isfinite(row).nonzero().flatten().tolist() for row in logits]


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 2.5], [5.0, 4.0, 3.0, 2.0, 1.0]])
    assert kept(top_k_filter(logits, 2)) == [[1, 4], [0, 1]]
    assert top_k_filter(logits, 0) is logits


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    assert kept(top_p_filter(logits, 0.75)) == [[0, 1]]
    assert kept(top_p_filter(logits, 0.85)) == [[0, 1, 2]]
    assert kept(top_p_filter(logits, 0.1)) == [[0]]  # the top token always survives
    filtered = top_p_filter(logits[:, [3, 1, 0, 2]], 0.75)  # order in the vocabulary does not matter
    assert kept(filtered) == [[1, 2]]


def test_greedy_and_filters_inside_sample_next():
    logits = torch.tensor([[0.0, 1.0, 5.0], [3.0, 0.0, 1.0]])
    assert sample_next(logits, None, SamplingOptions(temperature=0.0)).tolist() == [2, 0]
    generator = torch.Generator().manual_seed(0)
    many = torch.stack([sample_next(logits, None, SamplingOptions(top_k=1), generator) for _ in range(20)])
    assert (many == torch.tensor([2, 0])).all()


def test_repetition_aware_fallback_triggers_only_on_repeats():
    history = torch.tensor([[7, 7, 7, 1, 7], [1, 2, 3, 4, 5]])
    tokens = torch.tensor([7, 7])
    full_logits = torch.full((2, 10), -math.inf)
    full_logits[:, 0] = 0.0  # the full distribution puts all mass on token 0
    out = repetition_aware_fallback(tokens, full_logits, history, window=5, threshold=0.5, generator=None)
    assert out.tolist() == [0, 7]  # 4/5 > 0.5 repeats -> replaced; 0/5 kept


def test_repetition_window_in_sample_next():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0]]).repeat(2, 1)  # full distribution: P(0) ~ 0.7
    history = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 1]])
    options = SamplingOptions(temperature=1.0, top_k=1, repetition_window=4, repetition_threshold=0.5)
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, history, options, generator) for _ in range(50)])
    assert (draws[:, 1] == 0).all()  # no repetition: top-k choice kept
    assert (draws[:, 0] != 0).any()  # repeated: drawn from the full distribution, which reaches others


def test_seeded_sampling_is_deterministic():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    history = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(2))
    options = SamplingOptions(temperature=0.9, top_k=20, top_p=0.9, repetition_window=10, seed=123)

    def run():
        generator = options.generator()
        return torch.stack([sample_next(logits, history, options, generator) for _ in range(10)])

    torch.testing.assert_close(run(), run())
    other = SamplingOptions(temperature=0.9, top_k=20, top_p=0.9, repetition_window=10, seed=124)
    generator = other.generator()
    assert not torch.equal(run(), torch.stack([sample_next(logits, history, other, generator) for _ in range(10)]))


def test_max_frames_and_validation():
    options = SamplingOptions(max_frames_per_token=2.5, max_frames_base=10)
    assert options.max_frames(torch.tensor([0, 3, 4])).tolist() == [10, 18, 20]
    with pytest.raises(ValueError, match="top_p"):
        SamplingOptions(top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingOptions(temperature=-1.0)
    with pytest.raises(AttributeError):
        options.top_k = 5  # frozen
