"""pack_segments / take_segment index arithmetic, both padding sides."""

import torch

from ttsframe.modules.packing import pack_segments, take_segment


def segments():
    text = torch.tensor([[1, 2, 3], [4, 5, 0]])[..., None]  # (B, 3, 1)
    audio = torch.tensor([[10, 11, 0, 0], [12, 13, 14, 15]])[..., None]  # (B, 4, 1)
    return [text, audio], [torch.tensor([3, 2]), torch.tensor([2, 4])]


def test_right_padded_rows():
    packed = pack_segments(*segments())
    assert packed.values[..., 0].tolist() == [[1, 2, 3, 10, 11, 0], [4, 5, 12, 13, 14, 15]]
    assert packed.padding_mask.tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    assert packed.positions.tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 0, 1, 2, 3]]
    assert packed.starts.tolist() == [[0, 3], [0, 2]]


def test_left_padded_rows():
    packed = pack_segments(*segments(), pad_left=True)
    assert packed.values[..., 0].tolist() == [[0, 1, 2, 3, 10, 11], [4, 5, 12, 13, 14, 15]]
    assert packed.padding_mask.tolist() == [[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]
    assert packed.positions.tolist() == [[0, 0, 1, 2, 0, 1], [0, 1, 0, 1, 2, 3]]
    assert packed.starts.tolist() == [[1, 4], [0, 2]]


def test_take_segment_reads_back_each_segment():
    packed = pack_segments(*segments(), pad_left=True)
    audio = take_segment(packed.values, packed.starts[:, 1], 4)[..., 0]
    assert audio[0, :2].tolist() == [10, 11] and audio[1].tolist() == [12, 13, 14, 15]


def test_gradients_flow_to_packed_items_only():
    text = torch.randn(2, 3, 4, requires_grad=True)
    audio = torch.randn(2, 2, 4, requires_grad=True)
    packed = pack_segments([text, audio], [torch.tensor([3, 1]), torch.tensor([2, 2])])
    packed.values.sum().backward()
    assert text.grad[1, 1:].abs().sum() == 0 and text.grad[1, 0].abs().sum() > 0
    assert (audio.grad == 1).all()
