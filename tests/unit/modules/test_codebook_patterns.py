"""Codebook layouts: build/revert round trips, invalid-position masks, the VALL-E split."""

import pytest
import torch

from ttsframe.modules.codebook_patterns import CodebookPattern, get_pattern


@pytest.mark.parametrize("name", ["parallel", "delay", "valle"])
@pytest.mark.parametrize("n_codebooks", [1, 4])
def test_build_then_revert_round_trips(name, n_codebooks):
    pattern = get_pattern(name, n_codebooks)
    codes = torch.randint(0, 50, (3, n_codebooks, 7))
    sequence = pattern.build(codes)
    assert sequence.values.shape == (3, n_codebooks, pattern.sequence_length(7))
    torch.testing.assert_close(pattern.revert(sequence.values), codes)


def test_delay_layout_and_masks_with_row_lengths():
    pattern = get_pattern("delay", 3)
    codes = torch.arange(1, 5).repeat(2, 3, 1)  # every codebook holds 1 2 3 4
    sequence = pattern.build(codes, frame_lengths=torch.tensor([4, 2]), fill_id=-1)
    expected_row0 = torch.tensor([[1, 2, 3, 4, -1, -1], [-1, 1, 2, 3, 4, -1], [-1, -1, 1, 2, 3, 4]])
    expected_row1 = torch.tensor([[1, 2, -1, -1, -1, -1], [-1, 1, 2, -1, -1, -1], [-1, -1, 1, 2, -1, -1]])
    torch.testing.assert_close(sequence.values[0], expected_row0)
    torch.testing.assert_close(sequence.values[1], expected_row1)
    torch.testing.assert_close(sequence.valid, sequence.values != -1)
    reverted = pattern.revert(sequence.values)
    torch.testing.assert_close(reverted[1, :, :2], codes[1, :, :2])


def test_parallel_and_valle_keep_frames_aligned():
    codes = torch.randint(0, 9, (2, 4, 5))
    for name in ("parallel", "valle"):
        sequence = get_pattern(name, 4).build(codes)
        torch.testing.assert_close(sequence.values, codes)
        assert sequence.valid.all()


def test_valle_split_and_merge():
    pattern = get_pattern("valle", 4)
    codes = torch.randint(0, 9, (2, 4, 5))
    autoregressive, rest = pattern.split(codes)
    assert autoregressive.shape == (2, 1, 5) and rest.shape == (2, 3, 5)
    torch.testing.assert_close(pattern.merge(autoregressive, rest), codes)
    assert get_pattern("delay", 4).n_autoregressive == 4


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="valid: parallel, delay, valle"):
        get_pattern("interleaved", 4)
    with pytest.raises(ValueError, match=r"expects \(B, 4, T\)"):
        get_pattern("delay", 4).build(torch.zeros(2, 3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="n_autoregressive"):
        CodebookPattern("custom", (0, 1), n_autoregressive=3)
