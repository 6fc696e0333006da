"""DiTAR model: shapes, what each prediction may read (LM causal over patches, LocDiT local to its
patch and history), KV cache = uncached, CFG drops, normalisation, config checks and presets."""

import dataclasses

import pytest
import torch

from ttsframe.models.ditar.model import DiTAR, DiTARConfig
from ttsframe.models.ditar.patches import frames_to_patches, patches_for
from ttsframe.models.ditar.presets import PRESETS, get_preset, ditar_tiny
from ttsframe.modules.phoneme_pointer import pointer_inputs

VOCAB, M = 12, 16


def model(**changes):
    torch.manual_seed(0)
    net = DiTAR(dataclasses.replace(ditar_tiny(VOCAB, n_mels=M), **changes))
    if net.pointer_context is not None:  # its output starts at zero: make it count
        torch.nn.init.normal_(net.pointer_context.out.weight, std=0.5)
    return net


def batch(frame_lengths=(13, 6, 9), token_lengths=(7, 3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    B, T, L = len(frame_lengths), max(frame_lengths), max(token_lengths)
    tokens = torch.randint(1, VOCAB, (B, L), generator=g)
    tokens = tokens * (torch.arange(L) < torch.tensor(token_lengths)[:, None])
    mel = torch.randn(B, T, M, generator=g) - 4.0
    return tokens, torch.tensor(token_lengths), mel, torch.tensor(frame_lengths)


def patches_of(net, mel, lengths):
    frames, lengths = net.to_frames(mel, lengths)
    patches, _ = frames_to_patches(frames, lengths, net.config.patch_size)
    return patches, patches_for(lengths, net.config.patch_size)


@pytest.mark.parametrize("patch_size", [1, 4])
def test_forward_shapes_and_stop_targets(patch_size):
    tokens, token_lengths, mel, frame_lengths = batch()
    p = model(patch_size=patch_size)(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator())
    steps = [-(-n // patch_size) for n in (13, 6, 9)]
    n = max(steps)
    assert p.v_pred.shape == p.v_target.shape == (3, n, patch_size, M)
    assert p.frame_mask.shape == (3, n, patch_size) and p.frame_mask.sum((1, 2)).tolist() == [13, 6, 9]
    assert p.stop_logits.shape == p.stop_targets.shape == p.patch_mask.shape == (3, n)
    assert p.patch_mask.sum(1).tolist() == steps
    assert p.stop_targets.argmax(1).tolist() == [s - 1 for s in steps] and p.stop_targets.sum().item() == 3
    assert (p.v_pred[~p.patch_mask] == 0).all() and (p.v_target[~p.patch_mask] == 0).all()


def test_lm_is_causal_over_patches():
    net = model().eval()
    tokens, token_lengths, mel, frame_lengths = batch((24, 24, 20))
    patches, n = patches_of(net, mel, frame_lengths)  # 6, 6, 5 patches
    with torch.no_grad():
        h = net.lm_hidden(tokens, token_lengths, patches, n)[0]
        changed = patches.clone()
        changed[:, 2] += 3.0
        h2 = net.lm_hidden(tokens, token_lengths, changed, n)[0]
    torch.testing.assert_close(h[:, :3], h2[:, :3])  # h_i reads patches < i only
    assert (h[:, 3] - h2[:, 3]).abs().max() > 1e-3


@pytest.mark.parametrize("history", [0, 2])
def test_locdit_reads_only_its_own_patch_and_history(history):
    net = model(history=history).eval()
    g = torch.Generator().manual_seed(1)
    patches = torch.randn(2, 6, 4, M, generator=g)
    hidden = torch.randn(2, 6, net.config.d_model, generator=g)
    mask = torch.ones(2, 6, dtype=torch.bool)
    t, noise = torch.rand(12, generator=g), torch.randn(12, 4, M, generator=g)
    changed = patches.clone()
    changed[:, 1] += 5.0
    with torch.no_grad():
        v, _ = net.local_prediction(hidden, patches, mask, t, noise)
        v2, _ = net.local_prediction(hidden, changed, mask, t, noise)
    reads = {1 + k for k in range(history + 1)}  # patch 1 itself and the patches that hold it as history
    for i in range(6):
        difference = (v[:, i] - v2[:, i]).abs().max().item()
        assert (difference > 1e-4) == (i in reads), (i, difference)


def test_kv_cache_matches_the_teacher_forced_lm():
    net = model().eval()
    tokens, token_lengths, mel, frame_lengths = batch((24, 20, 22))
    patches, n = patches_of(net, mel, frame_lengths)  # 6, 5, 6
    n_prompt = torch.tensor([2, 1, 3])
    with torch.no_grad():
        reference = net.lm_hidden(tokens, token_lengths, patches, n)[0]  # (B, N, d)
        cache = net.lm.new_cache(max_length=64)
        hidden = net.prefill(tokens, token_lengths, patches[:, :3], n_prompt, cache)
        uncached = net.prefill(tokens, token_lengths, patches[:, :3], n_prompt)
        rows = torch.arange(3)
        torch.testing.assert_close(hidden, reference[rows, n_prompt], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(uncached, hidden, atol=1e-5, rtol=1e-5)
        for step in range(2):
            hidden = net.decode_step(patches[rows, n_prompt + step], n_prompt + 1 + step, cache)
            torch.testing.assert_close(hidden, reference[rows, n_prompt + 1 + step], atol=1e-5, rtol=1e-5)


def test_cfg_drop_zeroes_h_and_only_in_training():
    net = model(cfg_drop_prob=0.0)
    g = torch.Generator().manual_seed(2)
    patches, hidden = torch.randn(1, 3, 4, M, generator=g), torch.randn(1, 3, net.config.d_model, generator=g)
    mask, t, noise = torch.ones(1, 3, dtype=torch.bool), torch.rand(3, generator=g), torch.randn(3, 4, M, generator=g)
    with torch.no_grad():
        dropped, _ = net.local_prediction(hidden, patches, mask, t, noise, keep=torch.zeros(3, dtype=torch.bool))
        zeros, _ = net.local_prediction(torch.zeros_like(hidden), patches, mask, t, noise)
    torch.testing.assert_close(dropped, zeros)
    tokens, token_lengths, mel, frame_lengths = batch()
    run = lambda m: m(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(3)).v_pred
    with torch.no_grad():
        torch.testing.assert_close(run(net.train()), run(net.eval()))  # no drops at p = 0 (and no dropout in tiny)
        net.config.cfg_drop_prob = 0.9
        assert not torch.allclose(run(net.train()), run(net.eval()))
        torch.testing.assert_close(run(net.eval()), run(net.eval()))


def test_normalisation_round_trip_and_buffers():
    net = model()
    mean, std = torch.linspace(-6, -2, M), torch.linspace(0.5, 2, M)
    net.set_mel_stats(mean, std)
    assert bool(net.mel_stats_fitted)
    assert {"mel_mean", "mel_std", "mel_stats_fitted"} <= set(net.state_dict())
    mel, lengths = torch.randn(2, 5, M) * 2 - 4, torch.tensor([5, 3])
    frames, frame_lengths = net.to_frames(mel, lengths)
    torch.testing.assert_close(frames[0], (mel[0] - mean) / std)
    assert (frames[1, 3:] == 0).all()
    back, back_lengths = net.to_mel(frames, frame_lengths)
    torch.testing.assert_close(back[0], mel[0])
    assert back_lengths.tolist() == [5, 3]
    with pytest.raises(ValueError, match="positive"):
        net.set_mel_stats(mean, torch.zeros(M))


@pytest.mark.parametrize("field, value", [
    ("patch_size", 3), ("history", -1), ("cfg_drop_prob", 1.0), ("dropout", -0.1), ("representation", "vae"),
    ("n_layers", 0), ("locdit_d_model", 30), ("locenc_n_heads", 3), ("time_dim", 31), ("vocab_size", 0),
    ("alignment_heads", 3), ("alignment_layer", 2),
])
def test_config_validation_names_the_field(field, value):
    changes = {"alignment_heads": 1} if field == "alignment_layer" else {}
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(ditar_tiny(VOCAB), **changes, **{field: value})


def test_presets():
    assert set(PRESETS) == {"ditar_tiny", "ditar_cpu", "ditar_base"}
    count = lambda name: sum(p.numel() for p in DiTAR(get_preset(name, 100)).parameters())
    assert 10_000 < count("ditar_tiny") < 100_000
    assert 1_000_000 < count("ditar_cpu") < 3_000_000
    base = get_preset("ditar_base", 100)
    assert (base.n_layers, base.d_model, base.locdit_n_layers, base.patch_size, base.history) == (24, 1024, 4, 4, 2)
    assert isinstance(base, DiTARConfig)
    with pytest.raises(ValueError, match="valid: ditar_tiny, ditar_cpu, ditar_base"):
        get_preset("ditar_huge", 100)


def test_input_dropout_acts_on_the_patch_inputs_in_training_only():
    net = model(input_dropout=0.5, dropout=0.0)
    tokens, token_lengths, mel, frame_lengths = batch((24, 24, 20))
    patches, n = patches_of(net, mel, frame_lengths)
    with torch.no_grad():
        torch.manual_seed(1)
        a = net.train().lm_hidden(tokens, token_lengths, patches, n)[0]
        torch.manual_seed(2)
        b = net.lm_hidden(tokens, token_lengths, patches, n)[0]
        net.eval()
        c, d = (net.lm_hidden(tokens, token_lengths, patches, n)[0] for _ in range(2))
    torch.testing.assert_close(a[:, 0], b[:, 0])  # h_0 reads text and BOS only: nothing dropped
    assert (a[:, 1:] - b[:, 1:]).abs().max() > 1e-3
    torch.testing.assert_close(c, d)
    with pytest.raises(ValueError, match="input_dropout"):
        model(input_dropout=1.0)


def test_guided_heads_attention_covers_each_row_s_audio_steps_and_text():
    tokens, token_lengths, mel, frame_lengths = batch()
    assert model()(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator()).text_attention is None
    net = model(alignment_heads=1, alignment_layer=1)
    p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator())
    assert p.text_attention.shape == (3, 1, p.patch_mask.shape[1], 7) and torch.equal(p.text_lengths, token_lengths)
    # Row 1 (3 phonemes, 2 patches): columns past its text are its own audio, which the loss masks out;
    # h_0 (after BOS) sees only text and BOS, so most of its attention is on the text.
    assert (p.text_attention[:, 0, 0].sum(-1) > 0).all() and (p.text_attention.sum(-1) <= 1 + 1e-5).all()
    patches, n = patches_of(net, mel, frame_lengths)
    torch.testing.assert_close(net.lm_hidden(tokens, token_lengths, patches, n)[0],
                               model().lm_hidden(tokens, token_lengths, patches, n)[0])  # same weights, same states


def test_an_aligner_gives_each_patch_its_phoneme_and_both_losses():
    from ttsframe.models.ditar.loss import ditar_loss

    tokens, token_lengths, mel, frame_lengths = batch()
    net = model(alignment_heads=1, alignment_target="aligner")
    p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
    assert p.aligned_phonemes.shape == p.patch_mask.shape and p.aligner_loss.dim() == 0
    for row, (steps, length) in enumerate(zip(p.patch_mask.sum(1).tolist(), token_lengths.tolist())):
        phonemes = p.aligned_phonemes[row, :steps]
        assert (phonemes.diff() >= 0).all() and 0 <= phonemes.min() and phonemes.max() < length
    terms = ditar_loss(p)
    assert {"alignment", "aligner"} <= set(terms) and torch.isfinite(terms["loss"])
    assert model(alignment_heads=1).aligner is None  # the diagonal needs none
    with pytest.raises(ValueError, match="alignment_target"):
        model(alignment_target="dtw")


def test_a_phoneme_pointer_feeds_the_aligned_phoneme_and_trains_the_advance_head():
    from ttsframe.models.ditar.loss import ditar_loss

    tokens, token_lengths, mel, frame_lengths = batch((24, 20, 22))
    net = model(phoneme_pointer=True)
    p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
    logits, moves, mask = p.advance
    n = p.patch_mask.shape[1]
    assert logits.shape == (3, n - 1, net.config.max_advance) and moves.shape == mask.shape == (3, n - 1)
    assert torch.equal(moves, (p.aligned_phonemes.diff(dim=1)).clamp(0, net.config.max_advance - 1))
    assert {"aligner", "advance", "advance_accuracy"} <= set(ditar_loss(p))
    # The pointer's phoneme enters the LM: other pointers, other states.
    patches, n_patches = patches_of(net, mel, frame_lengths)
    with torch.no_grad():
        a = net.lm_hidden(tokens, token_lengths, patches, n_patches, p.aligned_phonemes)[0]
        b = net.lm_hidden(tokens, token_lengths, patches, n_patches, torch.zeros_like(p.aligned_phonemes))[0]
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="phoneme pointer"):
        net.lm_hidden(tokens, token_lengths, patches, n_patches)


@pytest.mark.parametrize("context", [0, 2])
def test_kv_cache_matches_the_teacher_forced_lm_with_a_pointer(context):
    net = model(phoneme_pointer=True, pointer_context=context).eval()
    tokens, token_lengths, mel, frame_lengths = batch((24, 20, 22))
    patches, n = patches_of(net, mel, frame_lengths)
    pointers = torch.tensor([[0, 1, 1, 2, 4, 6], [0, 0, 1, 2, 2, 2], [0, 1, 2, 3, 3, 4]])
    n_prompt, rows = torch.tensor([2, 1, 3]), torch.arange(3)
    with torch.no_grad():
        reference = net.lm_hidden(tokens, token_lengths, patches, n, pointers)[0]  # (B, N, d)
        cache = net.lm.new_cache(max_length=64)
        prefill_pointers = torch.stack([pointers[i, : 4] if k == 3 else torch.cat([pointers[i, : k + 1],
                                        pointers[i, : 3 - k]]) for i, k in enumerate(n_prompt.tolist())])
        hidden = net.prefill(tokens, token_lengths, patches[:, :3], n_prompt, cache, prefill_pointers)
        torch.testing.assert_close(hidden, reference[rows, n_prompt], atol=1e-5, rtol=1e-5)
        for step in range(2):
            pointer_input = pointer_inputs(net.pointer_table(tokens, token_lengths), pointers[rows, n_prompt + 1 + step][:, None])[:, 0]
            hidden = net.decode_step(patches[rows, n_prompt + step], n_prompt + 1 + step, cache, pointer_input)
            torch.testing.assert_close(hidden, reference[rows, n_prompt + 1 + step], atol=1e-5, rtol=1e-5)


def test_a_regression_prior_sets_locdit_s_target_to_the_residual():
    from ttsframe.models.ditar.loss import ditar_loss

    tokens, token_lengths, mel, frame_lengths = batch()
    net = model(regression_prior=True)
    p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
    mu, clean = p.prior
    patches, _ = patches_of(net, mel, frame_lengths)
    assert mu.shape == clean.shape == patches.shape and torch.equal(clean, patches)
    assert mu.requires_grad and "prior" in ditar_loss(p)
    # LocDiT's target is the residual: the same draw without a prior has a different target v.
    plain = model()
    q = plain(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(p.v_target, q.v_target)
    assert model().prior(torch.zeros(2, net.config.d_model)) is None


def test_self_feed_gives_the_lm_the_prior_s_own_patches_in_training_only():
    net = model(regression_prior=True, self_feed=1.0)
    calls, lm_hidden = [], net.lm_hidden

    def spy(text, text_lengths, patches, *rest):  # records what the LM reads, and its states
        hidden, attention = lm_hidden(text, text_lengths, patches, *rest)
        calls.append((patches, hidden))
        return hidden, attention

    net.lm_hidden = spy
    tokens, token_lengths, mel, frame_lengths = batch()
    true, frame_mask = frames_to_patches(*net.to_frames(mel, frame_lengths), net.config.patch_size)
    net.train()(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
    (first, hidden), (fed, _) = calls
    assert torch.equal(first, true)
    torch.testing.assert_close(fed, net.prior(hidden) * frame_mask[..., None])  # every patch the prior's
    assert not torch.allclose(fed, true)
    calls.clear()
    net.eval()(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1 and torch.equal(calls[0][0], true)
    with pytest.raises(ValueError, match="regression_prior"):
        model(self_feed=0.5)
    with pytest.raises(ValueError, match="self_feed"):
        model(regression_prior=True, self_feed=1.5)


def test_history_dropout_hides_locdit_s_history_for_a_share_of_training_patches():
    net = model(history_dropout=0.5)
    seen = []
    forward = net.locdit.forward
    net.locdit.forward = lambda x, t, cond, history, mask: seen.append(mask.clone()) or forward(x, t, cond, history, mask)
    tokens, token_lengths, mel, frame_lengths = batch(frame_lengths=(40, 36, 44))
    with torch.no_grad():
        net.train()(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(1))
        net.eval()(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(1))
    trained, evaluated = seen
    with_history = evaluated.any(dim=1)  # every patch after the first has history when nothing is dropped
    dropped = with_history & ~trained.any(dim=1)
    assert 0.25 < dropped.float().sum() / with_history.float().sum() < 0.75
    assert torch.equal(trained[~dropped], evaluated[~dropped])
    with pytest.raises(ValueError, match="history_dropout"):
        model(history_dropout=1.0)


def test_advance_grad_scale_scales_the_advance_gradient_into_the_lm_and_nothing_else():
    from ttsframe.models.ditar.loss import ditar_loss

    tokens, token_lengths, mel, frame_lengths = batch((24, 20, 22))
    grads, logits = {}, {}
    for scale in (1.0, 0.1):
        net = model(phoneme_pointer=True, advance_grad_scale=scale)
        p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(0))
        ditar_loss(p)["advance"].backward()
        grads[scale] = (next(net.lm.blocks[-1].parameters()).grad.clone(), net.advance_head.weight.grad.clone())
        logits[scale] = p.advance[0].detach()
    torch.testing.assert_close(logits[0.1], logits[1.0])  # the forward is the same
    torch.testing.assert_close(grads[0.1][1], grads[1.0][1])  # the head itself learns at full rate
    torch.testing.assert_close(grads[0.1][0], 0.1 * grads[1.0][0], atol=1e-9, rtol=1e-4)  # the LM gets a tenth
    with pytest.raises(ValueError, match="advance_grad_scale"):
        model(advance_grad_scale=1.5)
