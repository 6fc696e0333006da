"""ValleAR / ValleNAR forward: shapes, targets, masks, padding neutrality, loss, bf16."""

import dataclasses

import pytest
import torch

from ttsframe.models.valle.loss import codebook_loss
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.models.valle.presets import PRESETS, get_preset, valle_tiny

VOCAB, K, N = 12, 3, 16


def config() -> ValleConfig:
    return ValleConfig(
        vocab_size=VOCAB, n_codebooks=K, codebook_size=N, d_model=32, n_heads=4, n_layers=2, ffn_dim=64, dropout=0
    )


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, VOCAB, (3, 5), generator=generator)
    token_lengths = torch.tensor([5, 3, 4])
    codes = torch.randint(0, N, (3, K, 8), generator=generator)
    frame_lengths = torch.tensor([6, 8, 3])
    return tokens, token_lengths, codes, frame_lengths


def row(data, i):
    """Item i of a batch, without its padding."""
    tokens, token_lengths, codes, frame_lengths = data
    tokens_i = tokens[i : i + 1, : token_lengths[i]]
    codes_i = codes[i : i + 1, :, : frame_lengths[i]]
    return tokens_i, token_lengths[i : i + 1], codes_i, frame_lengths[i : i + 1]


@pytest.fixture(scope="module")
def ar():
    torch.manual_seed(0)
    return ValleAR(config()).eval()


@pytest.fixture(scope="module")
def nar():
    torch.manual_seed(0)
    return ValleNAR(config()).eval()


def test_ar_shapes_targets_and_mask(ar):
    tokens, token_lengths, codes, frame_lengths = batch()
    prediction = ar(tokens, token_lengths, codes, frame_lengths)
    assert prediction.logits.shape == (3, 9, N + 1)
    assert prediction.mask.sum(dim=1).tolist() == (frame_lengths + 1).tolist()
    for i, length in enumerate(frame_lengths.tolist()):
        assert prediction.targets[i, :length].tolist() == codes[i, 0, :length].tolist()
        assert prediction.targets[i, length] == ar.config.audio_eos


def test_ar_input_noise_changes_inputs_in_training_only():
    torch.manual_seed(0)
    noisy = ValleAR(dataclasses.replace(config(), input_noise=0.5))
    data = batch()
    noisy.train()
    torch.manual_seed(1)
    first = noisy(*data)
    torch.manual_seed(2)
    second = noisy(*data)
    assert torch.equal(first.targets, second.targets) and torch.equal(first.mask, second.mask)
    assert not torch.allclose(first.logits, second.logits)  # other codes replaced, targets unchanged
    noisy.eval()
    assert torch.equal(noisy(*data).logits, noisy(*data).logits)
    clean = ValleAR(config())
    clean.load_state_dict(noisy.state_dict())
    assert torch.allclose(clean.eval()(*data).logits, noisy(*data).logits)


def test_ar_rows_are_independent_of_padding(ar):
    data = batch()
    batched = ar(*data)
    for i in range(3):
        alone = ar(*row(data, i))
        length = int(data[3][i]) + 1
        torch.testing.assert_close(batched.logits[i, :length], alone.logits[0, :length], atol=1e-5, rtol=1e-5)


def test_nar_rows_are_independent_of_padding(nar):
    data = batch()
    prompt_lengths, stages = torch.tensor([2, 3, 1]), torch.tensor([1, 2, 2])
    batched = nar(*data, prompt_lengths=prompt_lengths, stages=stages)
    assert batched.logits.shape == (3, 8, N)
    for i in range(3):
        alone = nar(*row(data, i), prompt_lengths=prompt_lengths[i : i + 1], stages=stages[i : i + 1])
        length = int(data[3][i])
        torch.testing.assert_close(batched.logits[i, :length], alone.logits[0, :length], atol=1e-5, rtol=1e-5)


def test_nar_targets_mask_and_ignored_codebooks(nar):
    tokens, token_lengths, codes, frame_lengths = batch()
    prompt_lengths, stages = torch.tensor([2, 3, 1]), torch.tensor([1, 2, 2])
    prediction = nar(tokens, token_lengths, codes, frame_lengths, prompt_lengths, stages)
    for i in range(3):
        length = int(frame_lengths[i])
        assert prediction.targets[i, :length].tolist() == codes[i, stages[i], :length].tolist()
        expected = [prompt_lengths[i] <= t < frame_lengths[i] for t in range(8)]
        assert prediction.mask[i].tolist() == expected
    # codebooks >= stage on target frames are unknown to the model: changing them changes nothing
    scrambled = codes.clone()
    scrambled[0, 1:, 2:] = (scrambled[0, 1:, 2:] + 5) % N
    again = nar(tokens, token_lengths, scrambled, frame_lengths, prompt_lengths, stages)
    torch.testing.assert_close(again.logits[0], prediction.logits[0])


def test_nar_plan_is_seeded_and_in_range(nar):
    frame_lengths = torch.tensor([100, 40, 2, 1])
    prompt, stages = nar.sample_plan(frame_lengths, torch.Generator().manual_seed(0))
    prompt_again, stages_again = nar.sample_plan(frame_lengths, torch.Generator().manual_seed(0))
    assert torch.equal(prompt, prompt_again) and torch.equal(stages, stages_again)
    assert 25 <= prompt[0] <= 50 and 10 <= prompt[1] <= 20
    assert prompt[2] == 1 and prompt[3] == 0  # leaves at least one target frame
    assert ((stages >= 1) & (stages < K)).all()
    with pytest.raises(ValueError, match="both"):
        nar(*batch(), prompt_lengths=prompt)


def test_loss_is_finite_and_ignores_padded_positions(ar):
    tokens, token_lengths, codes, frame_lengths = batch()
    metrics = codebook_loss(ar(tokens, token_lengths, codes, frame_lengths))
    assert set(metrics) == {"loss", "accuracy_top1", "accuracy_top10"}
    assert torch.isfinite(metrics["loss"]) and 0 <= metrics["accuracy_top1"] <= metrics["accuracy_top10"] <= 1
    padded = codes.clone()
    padded[2, :, 3:] = 7  # past row 2's frames
    padded_tokens = tokens.clone()
    padded_tokens[1, 3:] = 9  # past row 1's phonemes
    again = codebook_loss(ar(padded_tokens, token_lengths, padded, frame_lengths))
    torch.testing.assert_close(again["loss"], metrics["loss"])
    metrics["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ar.parameters() if p.requires_grad)
    ar.zero_grad()


def test_bf16_autocast_forward_on_cpu(ar, nar):
    data = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ar_metrics = codebook_loss(ar(*data))
        nar_metrics = codebook_loss(nar(*data, generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(ar_metrics["loss"]) and torch.isfinite(nar_metrics["loss"])


def test_presets():
    tiny = valle_tiny(VOCAB, 8, 1024)
    assert tiny.n_layers <= 2 and tiny.d_model <= 128
    base = get_preset("valle_base", VOCAB, 8, 1024)
    assert (base.n_layers, base.n_heads, base.d_model, base.ffn_dim) == (12, 16, 1024, 4096)
    assert set(PRESETS) == {"valle_tiny", "valle_base"}
    with pytest.raises(ValueError, match="valid: valle_tiny, valle_base"):
        get_preset("valle_huge", VOCAB, 8, 1024)
    with pytest.raises(ValueError, match="at least 2 codebooks"):
        ValleNAR(valle_tiny(VOCAB, 1, 16))
