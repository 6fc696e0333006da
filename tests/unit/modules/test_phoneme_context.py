"""The phoneme pointer's text context: what it sees, what it ignores, how it starts."""

import torch
from torch import nn

from ttsframe.modules.phoneme_pointer import PhonemeContext, pointer_inputs, pointer_table


def context(layers=2, kernel=3):
    torch.manual_seed(0)
    net = PhonemeContext(20, 16, layers, kernel, dropout=0.0).eval()
    nn.init.normal_(net.out.weight, std=0.5)
    return net


def test_it_starts_at_zero_so_a_model_with_it_starts_as_one_without():
    fresh = PhonemeContext(20, 16)
    assert fresh(torch.randint(1, 20, (2, 9)), torch.tensor([9, 4])).abs().max() == 0


def test_each_phoneme_sees_its_neighbours_within_the_receptive_field_only():
    net = context(layers=2, kernel=3)  # 2 phonemes either side
    text = torch.randint(1, 20, (1, 12), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([12])
    changed = text.clone()
    changed[0, 6] = (text[0, 6] % 19) + 1
    with torch.no_grad():
        moved = (net(changed, lengths) - net(text, lengths)).abs().amax(-1)[0]  # (L,)
    assert (moved[4:9] > 1e-4).all()
    assert (moved[:4] == 0).all() and (moved[9:] == 0).all()


def test_padding_changes_nothing_and_stays_zero():
    net = context()
    text = torch.tensor([[3, 4, 5, 6, 0, 0], [3, 4, 5, 6, 9, 9]])
    with torch.no_grad():
        out = net(text, torch.tensor([4, 4]))
    torch.testing.assert_close(out[0, :4], out[1, :4])
    assert (out[0, 4:] == 0).all()


def test_pointer_inputs_add_the_embedding_and_the_context_at_each_pointer():
    net = context()
    embedding = nn.Embedding(20, 16)
    text, lengths = torch.tensor([[3, 4, 5, 6, 7]]), torch.tensor([5])
    pointers = torch.tensor([[0, 0, 2, 4, 9]])  # the last one past the row: clamped to its last phoneme
    with torch.no_grad():
        got = pointer_inputs(pointer_table(embedding, net, text, lengths), pointers)
        encoded = net(text, lengths)[0]
    expected = embedding(text[0, [0, 0, 2, 4, 4]]) + encoded[[0, 0, 2, 4, 4]]
    torch.testing.assert_close(got[0], expected.detach())
    torch.testing.assert_close(pointer_inputs(pointer_table(embedding, None, text, lengths), pointers)[0],
                               embedding(text[0, [0, 0, 2, 4, 4]]))
