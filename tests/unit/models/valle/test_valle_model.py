"""ValleAR / ValleNAR forward: shapes, targets, masks, padding neutrality, loss, bf16; the AR's
phoneme pointer (aligner, pointer inputs, advance head)."""

import dataclasses

import pytest
import torch

from ttsframe.data.collate import collate
from ttsframe.data.joining import join_items
from ttsframe.models.valle.loss import ValleLossConfig, codebook_loss, valle_loss
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.models.valle.presets import PRESETS, get_preset, valle_tiny

VOCAB, K, N = 12, 3, 16


def config(**overrides) -> ValleConfig:
    return ValleConfig(
        vocab_size=VOCAB, n_codebooks=K, codebook_size=N, d_model=32, n_heads=4, n_layers=2, ffn_dim=64, dropout=0,
        **overrides,
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


@pytest.mark.parametrize("pointer", [False, True])
def test_ar_rows_are_independent_of_padding(pointer):
    torch.manual_seed(0)
    ar = ValleAR(config(phoneme_pointer=pointer, aligner_d_model=16)).eval()
    data = batch()
    batched = ar(*data)
    for i in range(3):
        alone = ar(*row(data, i))
        length = int(data[3][i]) + 1
        torch.testing.assert_close(batched.logits[i, :length], alone.logits[0, :length], atol=1e-5, rtol=1e-5)
        if pointer:
            n = length - 1
            torch.testing.assert_close(batched.advance[0][i, :n], alone.advance[0][0, :n], atol=1e-5, rtol=1e-5)
            assert torch.equal(batched.advance[1][i, :n], alone.advance[1][0, :n])


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
        pointer_metrics = valle_loss(pointer_ar()(*data))
    assert torch.isfinite(ar_metrics["loss"]) and torch.isfinite(nar_metrics["loss"])
    assert torch.isfinite(pointer_metrics["loss"]) and torch.isfinite(pointer_metrics["aligner"])


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


def pointer_ar(seed=0, **overrides) -> ValleAR:
    torch.manual_seed(seed)
    return ValleAR(config(phoneme_pointer=True, aligner_d_model=16, **overrides))


def test_a_phoneme_pointer_aligns_each_step_and_trains_the_advance_head():
    ar = pointer_ar()
    tokens, token_lengths, codes, frame_lengths = batch()
    p = ar(tokens, token_lengths, codes, frame_lengths)
    assert p.logits.shape == (3, 9, N + 1) and p.aligner_loss.ndim == 0 and torch.isfinite(p.aligner_loss)
    logits, moves, mask = p.advance
    assert logits.shape == (3, 8, 4) and moves.shape == mask.shape == (3, 8)
    assert mask.sum(1).tolist() == frame_lengths.tolist() and ((moves >= 0) & (moves <= 3)).all()
    # each step's phoneme: monotonic from the first phoneme to the last, the EOS step on the last
    _, steps = ar.align(tokens, token_lengths, codes[:, 0], frame_lengths)  # (B, T + 1)
    assert steps.shape == (3, 9) and (steps[:, 1:] >= steps[:, :-1]).all()
    assert (steps[:2, 0] == 0).all()  # (row 2 has fewer frames than phonemes: its path cannot start at 0)
    rows = torch.arange(3)
    assert (steps[rows, frame_lengths] == token_lengths - 1).all() and (steps <= (token_lengths - 1)[:, None]).all()
    assert (moves[rows, frame_lengths - 1] == 1).all()  # after the last frame the pointer passes the text
    # the loss: codebook cross-entropy + weighted pointer terms, and every pointer part learns
    metrics = valle_loss(p, ValleLossConfig(aligner_weight=0.5, advance_weight=2.0))
    assert {"ce", "aligner", "advance", "advance_accuracy"} <= set(metrics)
    torch.testing.assert_close(metrics["ce"], codebook_loss(p)["loss"])
    torch.testing.assert_close(metrics["loss"], metrics["ce"] + 0.5 * metrics["aligner"] + 2.0 * metrics["advance"])
    p.aligner_loss.backward(retain_graph=True)  # the aligner reads its own code embedding, not the AR's
    assert ar.aligner_embedding.weight.grad.abs().sum() > 0 and ar.audio_embedding.weight.grad is None
    metrics["loss"].backward()
    for name in ("advance_head.0.weight", "advance_code_embedding.weight", "pointer_embedding.weight",
                 "aligner.query_encoder.0.weight"):
        assert ar.get_parameter(name).grad.abs().sum() > 0, name
    assert all(torch.isfinite(q.grad).all() for q in ar.parameters() if q.grad is not None)


def test_the_pointer_s_phoneme_enters_the_ar_and_is_required():
    ar = pointer_ar().eval()
    tokens, token_lengths, codes, frame_lengths = batch()
    audio_ids = torch.cat([torch.full((3, 1), ar.config.audio_bos), codes[:, 0]], dim=1)
    steps = ar.align(tokens, token_lengths, codes[:, 0], frame_lengths)[1]
    packed = ar._pack(tokens, token_lengths, audio_ids, frame_lengths + 1, pad_left=False, pointers=steps)
    other = ar._pack(tokens, token_lengths, audio_ids, frame_lengths + 1, pad_left=False,
                     pointers=(steps + 1).clamp(max=2))
    assert not torch.allclose(packed.values, other.values)
    with pytest.raises(ValueError, match="phoneme pointer"):
        ar._pack(tokens, token_lengths, audio_ids, frame_lengths + 1, pad_left=False)
    with pytest.raises(ValueError, match="max_advance"):
        config(max_advance=1)
    with pytest.raises(ValueError, match="advance_grad_scale"):
        config(advance_grad_scale=2.0)


def test_pointer_off_is_the_plain_ar():
    """Off (the default): no pointer parts, the same weights from the same seed, `valle_loss` = `codebook_loss`."""
    torch.manual_seed(0)
    plain = ValleAR(config())
    assert plain.aligner is None and plain.pointer_embedding is None and plain.advance_head is None
    assert not valle_tiny(VOCAB, 8, 1024).phoneme_pointer
    p = plain(*batch())
    assert p.aligner_loss is None and p.advance is None
    assert valle_loss(p).keys() == codebook_loss(p).keys()
    torch.testing.assert_close(valle_loss(p)["loss"], codebook_loss(p)["loss"], rtol=0, atol=0)
    with_pointer = pointer_ar()  # the pointer's parts come after the plain ones: the shared weights are equal
    shared = with_pointer.state_dict()
    assert all(torch.equal(v, shared[k]) for k, v in plain.state_dict().items())


def test_a_joined_row_is_aligned_as_one_row():
    """Two utterances joined (the zero-shot layout): the aligner and the pointer see one text and one
    run of frames, from the first phoneme of A to the last of B."""
    generator = torch.Generator().manual_seed(3)
    items = [{"id": f"u{i}", "speaker": "s", "tokens": torch.randint(4, VOCAB, (n,), generator=generator),
              "codes": torch.randint(0, N, (K, f), generator=generator), "frames": f}
             for i, (n, f) in enumerate([(3, 7), (4, 9)])]
    joined = collate([join_items(items[0], items[1], boundary_id=1)])
    assert joined.token_lengths.item() == 8 and joined.frame_lengths.item() == 16
    ar = pointer_ar()
    p = ar(joined.tokens, joined.token_lengths, joined.codes, joined.frame_lengths)
    steps = ar.align(joined.tokens, joined.token_lengths, joined.codes[:, 0], joined.frame_lengths)[1][0]
    assert steps[0] == 0 and steps[16] == 7 and set(steps.tolist()) == set(range(8))  # every phoneme of A and B
    assert p.advance[2].sum() == 16 and p.advance[1][0].sum() == 8  # 7 moves inside the text, then past it
