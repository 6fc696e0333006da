"""The written-out attention (probabilities for alignment losses) and the guided-attention loss."""

import pytest
import torch

from ttsframe.modules.attention import attention, attention_with_probabilities
from ttsframe.modules.guided_attention import diagonal_loss, diagonal_prior
from ttsframe.modules.transformer import Transformer, TransformerConfig


@pytest.mark.parametrize("causal", [True, False])
def test_written_out_attention_matches_sdpa_and_its_rows_sum_to_one_over_the_allowed_keys(causal):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=generator) for _ in range(3))
    padding = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    out, probs = attention_with_probabilities(q, k, v, causal=causal, key_padding_mask=padding)
    expected = attention(q, k, v, causal=causal, key_padding_mask=padding, backend="sdpa")
    real = padding[:, None, :, None]  # outputs at padded queries are unspecified
    torch.testing.assert_close(out * real, expected * real, atol=1e-5, rtol=1e-5)
    assert probs.shape == (2, 3, 6, 6)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 3, 6))
    assert probs[1, :, :4, 4:].abs().max() == 0  # no real query looks at a padded key
    if causal:
        assert probs[0].triu(diagonal=1).abs().max() == 0


def test_transformer_returns_the_asked_layers_attention_and_the_same_hidden_states():
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(d_model=16, n_heads=2, n_layers=3, ffn_dim=32)).eval()
    x, positions = torch.randn(2, 5, 16), torch.arange(5).expand(2, 5)
    hidden, (second, first) = net.forward_with_attention(x, positions, layers=(2, 0))
    torch.testing.assert_close(hidden, net(x, positions), atol=1e-5, rtol=1e-5)
    assert second.shape == first.shape == (2, 2, 5, 5) and not torch.allclose(first, second)
    with pytest.raises(ValueError, match="layer 3 asked, but the stack has 3 layers"):
        net.forward_with_attention(x, positions, layers=(3,))


def test_the_prior_is_one_on_each_row_s_diagonal():
    prior = diagonal_prior(torch.tensor([4, 8]), torch.tensor([2, 4]), 8, 4, sigma=0.2)
    assert prior.shape == (2, 8, 4)
    assert prior[0, 2, 1] == 1 and prior[1, 2, 1] == 1 and prior[1, 0, 0] == 1  # i / N == j / L
    assert prior[1, 0, 3] < 1e-3  # the first audio step against the last phoneme


def test_the_loss_is_small_on_the_diagonal_large_off_it_and_ignores_padding():
    steps, phonemes = torch.tensor([8, 6]), torch.tensor([4, 3])
    diagonal = torch.zeros(2, 1, 8, 4)
    for row in range(2):
        for i in range(int(steps[row])):
            diagonal[row, 0, i, i * int(phonemes[row]) // int(steps[row])] = 1.0
    reversed_ = diagonal.clone()
    for row in range(2):
        n, length = int(steps[row]), int(phonemes[row])
        reversed_[row, :, :n, :length] = diagonal[row, :, :n, :length].flip(-1)
    on, off = diagonal_loss(diagonal, steps, phonemes), diagonal_loss(reversed_, steps, phonemes)
    assert on < 0.3 and off > 2.0
    # A head that looks at the audio (no mass on the text) pays the most.
    assert diagonal_loss(torch.zeros(2, 1, 8, 4), steps, phonemes) > off
    # Padded steps and phonemes do not count.
    noisy = diagonal.clone()
    noisy[1, :, 6:] = 0.5  # past the steps
    noisy[1, :, :6, 3] = 0.7  # past the phonemes
    assert torch.equal(diagonal_loss(noisy, steps, phonemes), on)
