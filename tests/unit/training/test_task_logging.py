"""The text-reliance diagnostic compares each row with a row whose text differs."""

import torch

from ttsframe.training.task_logging import other_text


def test_each_row_gets_the_next_row_with_a_different_text():
    # Rows 0 and 1 read the same sentence (a dev split read by every voice, batched by length).
    tokens = torch.tensor([[1, 2, 3, 0], [1, 2, 3, 0], [4, 5, 6, 7], [1, 2, 3, 9]])
    lengths = torch.tensor([3, 3, 4, 3])
    replaced, replaced_lengths = other_text(tokens, lengths)
    # row 0 -> 2 (1 is the same text), 1 -> 2, 2 -> 3, 3 -> 0 (the padding 9 does not count: same text)
    assert torch.equal(replaced, tokens[[2, 2, 3, 2]]) and torch.equal(replaced_lengths, lengths[[2, 2, 3, 2]])
    for own, other, n, m in zip(tokens, replaced, lengths, replaced_lengths):
        assert own[:n].tolist() != other[:m].tolist()


def test_none_when_every_row_reads_the_same_text():
    tokens = torch.tensor([[1, 2, 0], [1, 2, 5]])
    assert other_text(tokens, torch.tensor([2, 2])) is None
    assert other_text(tokens[:1], torch.tensor([2])) is None
