"""collate: shapes, lengths, masks and padding values of a Batch."""

import pytest
import torch

from ttsframe.data.collate import CODE_PAD, MEL_PAD, TOKEN_PAD, Batch, collate


def sample(uid: str, L: int, T: int, feature: str = "codes") -> dict:
    item = {"id": uid, "speaker": f"s-{uid}", "tokens": torch.arange(1, L + 1), "frames": T}
    if feature == "codes":
        item["codes"] = torch.arange(3 * T).reshape(3, T)  # (K, T)
    else:
        item["mel"] = torch.ones(T, 5)  # (T, D)
    return item


def test_codes_batch():
    b = collate([sample("a", 4, 6), sample("b", 2, 9)])
    assert isinstance(b, Batch) and len(b) == 2 and b.ids == ["a", "b"] and b.speakers == ["s-a", "s-b"]
    assert b.tokens.shape == (2, 4) and b.tokens.dtype == torch.long
    assert b.token_lengths.tolist() == [4, 2] and b.frame_lengths.tolist() == [6, 9]
    assert b.tokens[1].tolist() == [1, 2, TOKEN_PAD, TOKEN_PAD]
    assert b.token_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert b.codes.shape == (2, 3, 9) and b.codes.dtype == torch.long and b.mel is None
    assert torch.equal(b.codes[0, :, :6], torch.arange(18).reshape(3, 6))
    assert (b.codes[0, :, 6:] == CODE_PAD).all() and (b.codes[1] != CODE_PAD).all()
    assert b.frame_mask.shape == (2, 9) and b.frame_mask.dtype == torch.bool
    assert b.frame_mask.sum(1).tolist() == [6, 9]


def test_mel_batch_and_custom_code_pad():
    b = collate([sample("a", 3, 2, "mel"), sample("b", 3, 5, "mel")])
    assert b.mel.shape == (2, 5, 5) and b.mel.dtype == torch.float32 and b.codes is None
    assert (b.mel[0, 2:] == MEL_PAD).all() and (b.mel[0, :2] == 1).all()
    assert (collate([sample("a", 1, 1), sample("b", 1, 3)], code_pad=1024).codes[0, :, 1:] == 1024).all()


def test_batch_moves_as_a_whole():
    b = collate([sample("a", 2, 2)]).to("cpu")
    assert isinstance(b, Batch) and b.codes.device.type == "cpu" and b.ids == ["a"]


def test_empty_input_fails():
    with pytest.raises(ValueError):
        collate([])
