"""MELLE model: shapes for r = 1 and r = 4 on uneven lengths, padding invariance, normalisation."""

import dataclasses

import pytest
import torch

from ttsframe.models.melle.latent import frames_to_groups, groups_to_frames
from ttsframe.models.melle.model import Melle, MelleConfig
from ttsframe.models.melle.presets import PRESETS, get_preset, melle_tiny

VOCAB, M = 12, 16


def model(r=1, **changes):
    torch.manual_seed(0)
    net = Melle(dataclasses.replace(melle_tiny(VOCAB, n_mels=M), reduction_factor=r, **changes))
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


@pytest.mark.parametrize("r", [1, 4])
def test_forward_shapes_and_stop_targets(r):
    tokens, token_lengths, mel, frame_lengths = batch()
    p = model(r)(tokens, token_lengths, mel, frame_lengths)
    steps = -(-13 // r)
    for name in ("coarse", "refined", "mu", "logvar", "target"):
        assert getattr(p, name).shape == (3, 13, M), name
    assert p.stop_logits.shape == p.stop_targets.shape == p.step_mask.shape == (3, steps)
    assert p.frame_mask.sum(1).tolist() == [13, 6, 9]
    expected_steps = [-(-n // r) for n in (13, 6, 9)]
    assert p.step_mask.sum(1).tolist() == expected_steps
    assert p.stop_targets.sum(1).tolist() == [1.0, 1.0, 1.0]
    assert p.stop_targets.argmax(1).tolist() == [n - 1 for n in expected_steps]
    assert (p.refined[~p.frame_mask] == 0).all() and (p.target[~p.frame_mask] == 0).all()


def test_groups_round_trip_with_padding():
    mel = torch.randn(2, 7, 3)
    groups = frames_to_groups(mel, 4)  # (2, 2, 12)
    assert groups.shape == (2, 2, 12)
    torch.testing.assert_close(groups[:, 0, 3:6], mel[:, 1])  # group 0 holds frames 0..3 in order
    back = groups_to_frames(groups, 4)
    torch.testing.assert_close(back[:, :7], mel)
    assert (back[:, 7:] == 0).all()


@pytest.mark.parametrize("r,pointer,context", [(1, False, 0), (4, False, 0), (2, True, 0), (2, True, 2)])
def test_padding_and_other_rows_change_nothing(r, pointer, context):
    net = model(r, phoneme_pointer=pointer, pointer_context=context).eval()
    tokens, token_lengths, mel, frame_lengths = batch()
    steps, big_steps = -(-13 // r), -(-22 // r)
    noise = torch.randn(3, big_steps, r * M, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        together = net(tokens, token_lengths, mel, frame_lengths, noise=noise[:, :steps])
        # Row 1 alone, cut to its own lengths...
        alone = net(tokens[1:2, :3], token_lengths[1:2], mel[1:2, :6], frame_lengths[1:2],
                    noise=noise[1:2, : -(-6 // r)])
        # ...and the batch with 9 more padding frames full of garbage.
        big_tokens = torch.cat([tokens, torch.full((3, 4), 5)], 1)
        big_mel = torch.cat([mel, torch.full((3, 9, M), 50.0)], 1)
        big_mel[1, 6:] = -80.0
        padded = net(big_tokens, token_lengths, big_mel, frame_lengths, noise=noise)
    for name in ("coarse", "refined", "mu", "logvar"):
        a, b, c = getattr(alone, name)[0], getattr(together, name)[1, :6], getattr(padded, name)[1, :6]
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b, c, atol=1e-5, rtol=1e-5)
    n_steps = -(-6 // r)
    torch.testing.assert_close(alone.stop_logits[0], together.stop_logits[1, :n_steps], atol=1e-5, rtol=1e-5)


def test_normalisation_round_trip_and_postnet_starts_as_identity():
    net = model()
    mean, std = torch.linspace(-6, -2, M), torch.linspace(0.5, 2, M)
    net.set_mel_stats(mean, std)
    assert bool(net.mel_stats_fitted)
    mel = torch.randn(2, 5, M) * 2 - 4
    torch.testing.assert_close(net.denormalize(net.normalize(mel)), mel)
    assert {"mel_mean", "mel_std", "mel_stats_fitted"} <= set(net.state_dict())
    tokens, token_lengths, mel, frame_lengths = batch()
    p = net(tokens, token_lengths, mel, frame_lengths)
    torch.testing.assert_close(p.refined, p.coarse.masked_fill(~p.frame_mask[..., None], 0))  # zero-init last conv
    with pytest.raises(ValueError, match="positive"):
        net.set_mel_stats(mean, torch.zeros(M))


def test_presets_and_config_checks():
    assert set(PRESETS) == {"melle_tiny", "melle_cpu", "melle_base"}
    base = get_preset("melle_base", VOCAB)
    assert (base.n_layers, base.n_heads, base.d_model, base.ffn_dim) == (12, 16, 1024, 4096)
    cpu = get_preset("melle_cpu", VOCAB)
    assert (cpu.n_layers, cpu.d_model, cpu.prenet_dropout) == (4, 128, 0.5)
    with pytest.raises(ValueError, match="valid: melle_tiny, melle_cpu, melle_base"):
        get_preset("melle_huge", VOCAB)
    with pytest.raises(ValueError, match="reduction_factor"):
        MelleConfig(vocab_size=VOCAB, reduction_factor=5)


@pytest.mark.parametrize("r", [1, 2])
def test_self_feed_replaces_inputs_with_own_predictions_in_training_only(r):
    tokens, token_lengths, mel, frame_lengths = batch()
    noise = torch.randn(3, -(-13 // r), r * M, generator=torch.Generator().manual_seed(5))
    plain, fed, every = (model(r, self_feed=share, prenet_dropout=0.0) for share in (0.0, 0.5, 1.0))
    run = lambda net, seed=1: net(tokens, token_lengths, mel, frame_lengths, noise=noise,  # noqa: E731
                                  generator=torch.Generator().manual_seed(seed))
    # the first position reads BOS only: the same with or without self-feeding
    torch.testing.assert_close(run(plain).mu[:, :r], run(every).mu[:, :r])
    assert not torch.allclose(run(plain).mu[:, r:], run(fed).mu[:, r:])
    torch.testing.assert_close(run(fed).mu, run(fed).mu)  # the generator fixes which inputs are replaced
    assert not torch.allclose(run(fed, 1).mu, run(fed, 2).mu)
    # self_feed=1 feeds exactly the model's own teacher-forced predictions back
    with torch.no_grad():
        first = run(plain)
    own = first.coarse.clone()
    own[~first.frame_mask] = 0.0
    refed = plain(tokens, token_lengths, own, frame_lengths, noise=noise)  # (mel statistics: identity)
    torch.testing.assert_close(run(every).mu, refed.mu, atol=1e-5, rtol=1e-5)
    plain.eval(), fed.eval()
    torch.testing.assert_close(run(plain).mu, run(fed).mu)  # evaluation never self-feeds
    with pytest.raises(ValueError, match="self_feed"):
        MelleConfig(vocab_size=VOCAB, self_feed=1.5)


@pytest.mark.parametrize("r", [1, 2])
def test_a_phoneme_pointer_aligns_each_group_and_trains_the_advance_head(r):
    tokens, token_lengths, mel, frame_lengths = batch()
    net = model(r, phoneme_pointer=True)
    p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(1))
    steps = -(-13 // r)
    assert p.coarse.shape == (3, 13, M) and p.stop_logits.shape == (3, steps)
    logits, moves, mask = p.advance
    assert logits.shape == (3, steps - 1, 4) and moves.shape == mask.shape == (3, steps - 1)
    assert mask.sum(1).tolist() == [-(-n // r) - 1 for n in (13, 6, 9)]
    assert ((moves >= 0) & (moves <= 3)).all() and p.aligner_loss.ndim == 0
    # each group's phoneme is its middle frame's, monotonic and within the row's text
    _, aligned = net.align(tokens, token_lengths, p.target, frame_lengths, steps)  # (B, S)
    assert aligned.shape == (3, steps) and (aligned[:, 1:] >= aligned[:, :-1]).all()
    assert (aligned <= (token_lengths - 1)[:, None]).all() and (aligned[:, 0] == 0).all()
    # the advance and aligner terms reach their parameters
    p.advance[0].sum().backward(retain_graph=True)
    p.aligner_loss.backward()
    assert net.advance_head.weight.grad.abs().sum() > 0 and net.aligner.query_encoder[0].weight.grad.abs().sum() > 0
    # the pointer's phoneme enters the transformer: other pointers, other states
    net.eval()
    inputs, lengths = frames_to_groups(net.normalize(mel), r)[:, :-1], -(-frame_lengths // r)
    with torch.no_grad():
        a = net._audio_hidden(tokens, token_lengths, inputs, lengths, aligned)
        b = net._audio_hidden(tokens, token_lengths, inputs, lengths, (aligned + 1).clamp(max=2))
    assert not torch.allclose(a[:, 1:], b[:, 1:])
    with pytest.raises(ValueError, match="phoneme pointer"):
        net._audio_hidden(tokens, token_lengths, inputs, lengths)
    with pytest.raises(ValueError, match="max_advance"):
        MelleConfig(vocab_size=VOCAB, max_advance=1)
    assert model(r).advance_head is None and model(r).aligner is None


def test_an_advance_head_that_sees_the_group_reads_it_in_training_and_in_generation():
    """`advance_sees_group`: the move after group j depends on group j (the target's when teacher-forced,
    the drawn one when generating); without it the group changes nothing."""
    from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel

    tokens, token_lengths, mel, frame_lengths = batch()
    net = model(2, phoneme_pointer=True, advance_sees_group=True)
    p = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(1))
    p.advance[0].sum().backward()
    assert net.advance_head[0].weight.grad[:, net.config.d_model:].abs().sum() > 0  # the group's columns
    hidden, groups = torch.randn(3, net.config.d_model), torch.randn(3, net.config.group_dim)
    assert not torch.allclose(net.advance_logits(hidden, groups), net.advance_logits(hidden, groups + 1))
    plain = model(2, phoneme_pointer=True)
    torch.testing.assert_close(plain.advance_logits(hidden, groups), plain.advance_logits(hidden, groups + 1))
    seen = []  # generation moves the pointer on the group it just drew
    read = net.advance_logits
    net.advance_logits = lambda h, g: seen.append(g.clone()) or read(h, g)
    options = MelleSamplingOptions(temperature=0.0, max_frames_per_token=2.0)
    generate_mel(net, tokens, token_lengths, mel[:, :0], torch.zeros(3, dtype=torch.long), options,
                 min_frames=torch.full((3,), 6))
    assert seen and all(g.shape == (3, net.config.group_dim) and g.abs().sum() > 0 for g in seen)


def test_pointer_jitter_moves_boundaries_by_a_group_and_the_head_learns_the_way_back():
    from ttsframe.modules.phoneme_pointer import advance_targets, jittered

    track = torch.tensor([[0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4]])
    fed = jittered(track, 0.5, torch.Generator().manual_seed(0))
    assert (fed[:, 1:] >= fed[:, :-1]).all() and (fed - track).abs().max() == 1 and (fed != track).any()
    assert torch.equal(jittered(track, 0.0), track)
    moves = advance_targets(track, 4, fed)
    assert torch.equal(moves, (track[:, 1:] - fed[:, :-1]).clamp(0, 3))  # from what was fed back onto the track
    tokens, token_lengths, mel, frame_lengths = batch()
    net = model(2, phoneme_pointer=True, pointer_jitter=0.5)
    a = net(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(1))
    b = net.eval()(tokens, token_lengths, mel, frame_lengths, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a.advance[1], b.advance[1])  # training jitters; evaluation feeds the track itself
    with pytest.raises(ValueError, match="pointer_jitter"):
        MelleConfig(vocab_size=VOCAB, pointer_jitter=1.5)
