"""DiTAR patches: frames <-> patches round trip with masks, history gathering, the representation registry."""

import pytest
import torch

from ttsframe.models.ditar.patches import (
    REPRESENTATIONS, build_representation, frames_to_patches, history_patches, last_patches, patches_for,
    patches_to_frames,
)


@pytest.mark.parametrize("patch_size", [1, 2, 4, 8])
def test_round_trip_and_frame_mask(patch_size):
    frames = torch.randn(2, 11, 3)
    lengths = torch.tensor([11, 5])
    patches, mask = frames_to_patches(frames, lengths, patch_size)
    n = -(-11 // patch_size)
    assert patches.shape == (2, n, patch_size, 3) and mask.shape == (2, n, patch_size)
    assert mask.sum(dim=(1, 2)).tolist() == [11, 5]
    assert patches_for(lengths, patch_size).tolist() == [n, -(-5 // patch_size)]
    back = patches_to_frames(patches)
    torch.testing.assert_close(back[0, :11], frames[0])
    torch.testing.assert_close(back[1, :5], frames[1, :5])
    assert (back[1, 5:] == 0).all() and (back[0, 11:] == 0).all()  # padding is zeros, whatever was there
    if patch_size == 4:
        torch.testing.assert_close(patches[0, 1, 2], frames[0, 6])  # patch i holds frames iP .. iP + P - 1


def test_history_patches_oldest_first_with_start_mask():
    patches = torch.arange(5.0).view(1, 5, 1, 1).expand(1, 5, 2, 1)  # patch i is all i
    history, mask = history_patches(patches, 2)
    assert history.shape == (1, 5, 2, 2, 1) and mask.shape == (5, 2)
    assert history[0, :, :, 0, 0].tolist() == [[0, 0], [0, 0], [0, 1], [1, 2], [2, 3]]
    assert mask.tolist() == [[False, False], [False, True], [True, True], [True, True], [True, True]]
    empty, empty_mask = history_patches(patches, 0)
    assert empty.shape == (1, 5, 0, 2, 1) and empty_mask.shape == (5, 0)


def test_last_patches_per_row_and_empty_prompt():
    patches = (torch.arange(4.0) + 1).view(1, 4, 1, 1).repeat(2, 1, 3, 2)  # (2, 4, 3, 2), patch i is i + 1
    history, mask = last_patches(patches, torch.tensor([4, 1]), 2)
    assert history[:, :, 0, 0].tolist() == [[3, 4], [0, 1]]
    assert mask.tolist() == [[True, True], [False, True]]
    none, none_mask = last_patches(patches[:, :0], torch.zeros(2, dtype=torch.long), 3)
    assert none.shape == (2, 3, 3, 2) and not none.any() and not none_mask.any()


def test_representation_registry():
    mel = build_representation("mel", 16)
    assert mel.dim == 16 and set(REPRESENTATIONS) == {"mel"}
    x, lengths = torch.randn(2, 5, 16), torch.tensor([5, 3])
    frames, frame_lengths = mel.encode(x, lengths)
    back, back_lengths = mel.decode(frames, frame_lengths)
    torch.testing.assert_close(back, x)
    assert back_lengths.tolist() == [5, 3]
    with pytest.raises(ValueError, match="valid: mel"):
        build_representation("vae", 16)
