"""FSQ: exact index round trips, outputs on the grid, gradients through the rounding."""

import itertools
import math

import pytest
import torch

from ttsframe.tokenizers.fsq import FSQ

LEVEL_SETS = [(3,), (2, 2), (4, 3), (5, 4, 2), (8, 5, 5, 5), (3,) * 8]


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_indices_codes_indices_is_exact_for_every_code(levels):
    fsq = FSQ(levels)
    indices = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(indices)  # (N, d)
    assert fsq.codebook_size == math.prod(levels)
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    assert len({tuple(c) for c in codes.tolist()}) == fsq.codebook_size  # all codes distinct


@pytest.mark.parametrize("levels", [(2, 3, 4, 5), (3,) * 4, (8, 6)])
def test_quantized_values_are_on_the_grid_and_every_level_is_reached(levels):
    torch.manual_seed(0)
    fsq = FSQ(levels)
    codes = fsq.quantize(4 * torch.randn(20000, len(levels)))
    for j, n in enumerate(levels):
        half = n // 2
        assert sorted(set((codes[:, j] * half).tolist())) == [float(k - half) for k in range(n)]


def test_zero_maps_to_the_middle_code_for_even_and_odd_levels():
    fsq = FSQ((2, 3, 4, 5))
    assert torch.equal(fsq.bound(torch.zeros(4)), torch.zeros(4))
    assert torch.equal(fsq.quantize(torch.zeros(4)), torch.zeros(4))


def test_gradients_pass_through_the_rounding_and_both_projections():
    torch.manual_seed(0)
    fsq = FSQ((5, 5, 5), dim=16)
    x = torch.randn(4, 7, 16, requires_grad=True)
    out, indices = fsq(x)
    out.pow(2).sum().backward()
    assert out.shape == x.shape and indices.shape == (4, 7) and indices.dtype == torch.long
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert fsq.project_in.weight.grad.abs().sum() > 0 and fsq.project_out.weight.grad.abs().sum() > 0


def test_unquantized_path_is_continuous_and_reports_the_same_indices():
    torch.manual_seed(0)
    fsq = FSQ((3, 3, 3, 3), dim=8)
    x = torch.randn(50, 8)
    out_q, idx_q = fsq(x, quantize=True)
    out_c, idx_c = fsq(x, quantize=False)
    assert torch.equal(idx_q, idx_c) and torch.equal(idx_q, fsq.tokenize(x))
    assert not torch.allclose(out_q, out_c)
    z = fsq.bound(fsq.project_in(x))
    assert len(set(itertools.chain.from_iterable(z.tolist()))) > 50  # not rounded


def test_bad_levels_fail():
    with pytest.raises(ValueError):
        FSQ((1, 3))
    with pytest.raises(ValueError):
        FSQ(())
