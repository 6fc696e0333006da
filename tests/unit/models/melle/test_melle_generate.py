"""MELLE inference: cached decoding equals teacher forcing and uncached generation; stopping,
budgets, seeds and the target-only, log-mel output."""

import dataclasses

import pytest
import torch

from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel, synthesize_mel
from ttsframe.models.melle.latent import frames_to_groups
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import melle_tiny

VOCAB, M = 12, 16


def model(r=1, **changes):
    torch.manual_seed(0)
    net = Melle(dataclasses.replace(melle_tiny(VOCAB, n_mels=M), reduction_factor=r, **changes))
    net.set_mel_stats(torch.linspace(-6, -3, M), torch.linspace(1, 2, M))
    if net.pointer_context is not None:  # its output starts at zero: make it count
        torch.nn.init.normal_(net.pointer_context.out.weight, std=0.5)
    return net.eval()


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (3, 6), generator=g)
    token_lengths = torch.tensor([6, 2, 4])
    tokens = tokens * (torch.arange(6) < token_lengths[:, None])
    prompt = torch.randn(3, 9, M, generator=g) - 4
    return tokens, token_lengths, prompt, torch.tensor([9, 0, 6])


def set_stop(net, bias):
    net.stop_head.set_constant(bias)


@pytest.mark.parametrize("r", [1, 4])
def test_cached_decoding_matches_teacher_forcing(r):
    net = model(r)
    tokens, token_lengths, _, _ = inputs()
    mel = torch.randn(3, 12, M, generator=torch.Generator().manual_seed(4)) - 4  # 12: whole groups for r = 4
    frame_lengths = torch.tensor([12, 8, 7])
    prompt_steps = torch.tensor([1, 0, 0])  # groups given to prefill (the 2 steps checked stay real)
    with torch.no_grad():
        steps = 12 // r
        full = net(tokens, token_lengths, mel, frame_lengths, noise=torch.zeros(3, steps, r * M))
        groups = frames_to_groups(net.normalize(mel), r)  # (B, S, rM) teacher-forced inputs
        cache = net.transformer.new_cache()
        hidden = net.prefill(tokens, token_lengths, groups, prompt_steps, cache)
        rows = torch.arange(3)
        for step in range(2):
            j = prompt_steps + step  # the group this hidden state predicts
            coarse, stop = net.predict_step(hidden, torch.zeros(3, r * M))
            expected = frames_to_groups(full.coarse, r)[rows, j]
            torch.testing.assert_close(coarse, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(stop, full.stop_logits[rows, j], atol=1e-5, rtol=1e-5)
            hidden = net.decode_step(groups[rows, j], j + 1, cache)


@pytest.mark.parametrize("r", [1, 4])
def test_cached_generation_equals_uncached(r):
    net = model(r)
    set_stop(net, -50.0)  # keep going (no early stop) so many steps are compared
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    options = MelleSamplingOptions(temperature=0.0, max_frames_per_token=3)
    cached = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options)
    uncached = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, use_cache=False)
    assert [len(x) for x in cached] == [len(x) for x in uncached] == [18, 6, 12]
    for a, b in zip(cached, uncached):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # With noise the two paths draw the same eps too.
    noisy = dataclasses.replace(options, temperature=1.0, seed=3)
    for a, b in zip(generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, noisy),
                    generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, noisy, use_cache=False)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_forced_stop_and_min_frames():
    for r in (1, 4):
        net = model(r)
        set_stop(net, 10.0)  # stop probability ~1 from the first step
        tokens, token_lengths, prompt, prompt_lengths = inputs()
        out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, MelleSamplingOptions(temperature=0))
        assert [len(x) for x in out] == [r] * 3
        options = MelleSamplingOptions(temperature=0, min_frames=6)
        out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options)
        assert [len(x) for x in out] == [6 if r == 1 else 8] * 3  # whole groups
        options = MelleSamplingOptions(temperature=0, min_frames_per_token=1.5)  # per row: 1.5 x [6, 2, 4]
        out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options)
        assert [len(x) for x in out] == ([9, 3, 6] if r == 1 else [12, 4, 8])


def test_max_length_respected_when_never_stopping():
    for r in (1, 4):
        net = model(r)
        set_stop(net, -10.0)
        tokens, token_lengths, prompt, prompt_lengths = inputs()
        options = MelleSamplingOptions(temperature=0.5, max_frames_per_token=2.5)
        out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options)
        assert [len(x) for x in out] == [15, 5, 10]  # ceil(2.5 * tokens), cut inside the last group
        budgets = torch.tensor([3, 1, 7])
        out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, max_frames=budgets)
        assert [len(x) for x in out] == budgets.tolist()


def test_seeded_diverse_and_log_mel_output():
    net = model()
    set_stop(net, -10.0)
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    options = MelleSamplingOptions(temperature=1.0, max_frames_per_token=2, seed=1)
    a = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options)
    b = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options)
    c = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, dataclasses.replace(options, seed=2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.allclose(a[0], c[0])  # sampling the latent is the source of diversity
    assert all(x.shape[1] == M and not x.requires_grad and not x.is_inference() for x in a)
    assert not net.training
    # Denormalised: log-mel around the stats' mean, not standardised values around 0.
    assert -12 < float(torch.cat(a).mean()) < 2


def test_synthesize_mel_returns_target_only():
    net = model(2)
    set_stop(net, -10.0)
    text = [torch.tensor([3, 4, 5]), torch.tensor([6])]
    prompt_text = [torch.tensor([7, 8]), torch.tensor([9, 10, 11])]
    prompt_mels = [torch.randn(7, M) - 4, torch.randn(4, M) - 4]
    options = MelleSamplingOptions(temperature=0, max_frames_per_token=3)
    out = synthesize_mel(net, text, prompt_text, prompt_mels, options)
    assert [tuple(x.shape) for x in out] == [(9, M), (3, M)]  # budgets from the target text only
    with pytest.raises(ValueError, match="one entry per item"):
        synthesize_mel(net, text, prompt_text[:1], prompt_mels, options)
    with pytest.raises(ValueError, match="temperature"):
        MelleSamplingOptions(temperature=-1)


def set_advance(net, move):
    """Makes the advance head predict ``move`` phonemes per group (almost surely)."""
    with torch.no_grad():
        net.advance_head.weight.zero_()
        net.advance_head.bias.fill_(-30.0)
        net.advance_head.bias[move] = 30.0


@pytest.mark.parametrize("r", [1, 2])
def test_a_pointer_model_starts_at_the_target_and_ends_past_its_text(r):
    from ttsframe.models.melle.generate import _prompt_groups, _start_pointers

    net = model(r, phoneme_pointer=True)
    set_stop(net, -50.0)  # only the pointer ends a row
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    spoken = torch.tensor([3, 0, 1])  # phonemes the prompts speak
    _, prompt_steps = _prompt_groups(net, prompt, prompt_lengths)
    start, pointers = _start_pointers(net, tokens, token_lengths, prompt, prompt_steps, spoken)
    assert start.tolist() == [3, 0, 1] and pointers.shape == (3, int(prompt_steps.max()) + 1)
    assert pointers[0, int(prompt_steps[0])] == 3 and pointers[1, 0] == 0 and (pointers[0] <= 3).all()
    # one phoneme per group: a row ends at the group after which the pointer passes its text
    set_advance(net, 1)
    options = MelleSamplingOptions(temperature=0.0, max_frames_per_token=10)
    out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
    assert [len(x) for x in out] == [r * (n - s) for n, s in zip(token_lengths.tolist(), spoken.tolist())]
    # it never stops before its min_frames, and a pointer that stays puts its budget to use
    floor = torch.full((3,), 4 * r)
    out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, min_frames=floor,
                       prompt_text_lengths=spoken)
    assert [len(x) for x in out] == [max(r * (n - s), 4 * r) for n, s in zip(token_lengths.tolist(), spoken.tolist())]
    set_advance(net, 0)
    out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
    assert [len(x) for x in out] == (10 * token_lengths).tolist()


@pytest.mark.parametrize("r,context", [(1, 0), (2, 0), (2, 2)])
def test_a_pointer_model_s_cached_generation_equals_uncached(r, context):
    net = model(r, phoneme_pointer=True, pointer_context=context)
    set_stop(net, -50.0)
    with torch.no_grad():
        net.advance_head.bias.copy_(torch.tensor([1.0, 0.5, -1.0, -2.0]))  # a fractional expected move
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    spoken = torch.tensor([2, 0, 1])
    for options in (MelleSamplingOptions(temperature=0.0, max_frames_per_token=4),
                    MelleSamplingOptions(temperature=1.0, max_frames_per_token=4, seed=3)):
        cached = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
        uncached = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, options, use_cache=False,
                                prompt_text_lengths=spoken)
        assert [len(x) for x in cached] == [len(x) for x in uncached]
        for a, b in zip(cached, uncached):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # synthesize_mel (the synthesizer's entry) runs the pointer from the target's first phoneme
    out = synthesize_mel(net, [torch.tensor([3, 4, 5])], [torch.tensor([7, 8])], [torch.randn(8, M) - 4],
                         MelleSamplingOptions(temperature=0, max_frames_per_token=3))
    assert 0 < len(out[0]) <= 9


def set_durations(net, steps: float):
    """Every phoneme's predicted duration: `steps` groups."""
    with torch.no_grad():
        net.duration_predictor.out.weight.zero_()
        net.duration_predictor.out.bias.fill_(float(torch.tensor(steps).log1p()))


@pytest.mark.parametrize("r", [1, 2])
def test_a_planned_pointer_follows_the_duration_plan_and_ends_where_it_does(r):
    net = model(r, phoneme_pointer=True, duration_plan=True)
    set_stop(net, -50.0)  # only the plan ends a row
    set_advance(net, 0)  # the head would never move on
    set_durations(net, 2.0)
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    spoken = torch.tensor([3, 0, 1])
    plain = MelleSamplingOptions(temperature=0.0, max_frames_per_token=10, prompt_pace=False)
    out = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, plain, prompt_text_lengths=spoken)
    assert [len(x) for x in out] == [2 * r * (n - s) for n, s in zip(token_lengths.tolist(), spoken.tolist())]
    cached_paced = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, dataclasses.replace(plain, prompt_pace=True),
                                prompt_text_lengths=spoken)
    uncached = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, dataclasses.replace(plain, prompt_pace=True),
                            use_cache=False, prompt_text_lengths=spoken)
    for a, b in zip(cached_paced, uncached):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the prompt's pace: row 1 has no prompt (as planned), the others scale within the rate range
    assert len(cached_paced[1]) == len(out[1]) and all(0 < len(x) for x in cached_paced)
    # follow_plan=False: the advance head's pointer, which here never passes the text
    head = generate_mel(net, tokens, token_lengths, prompt, prompt_lengths, dataclasses.replace(plain, follow_plan=False),
                        prompt_text_lengths=spoken)
    assert [len(x) for x in head] == (10 * token_lengths).tolist()


def test_the_duration_term_trains_the_predictor_alone():
    from ttsframe.models.melle.loss import melle_loss

    net = model(2, phoneme_pointer=True, duration_plan=True).train()
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    mel = torch.randn(3, 12, M) - 4
    prediction = net(tokens, token_lengths.clamp(min=1), mel, torch.tensor([12, 8, 10]), generator=torch.Generator().manual_seed(0))
    predicted, counts, lengths = prediction.durations
    assert counts.sum(1).tolist() == [6, 4, 5]  # every real group counted once
    melle_loss(prediction)["duration"].backward()
    assert net.duration_predictor.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.transformer.parameters())
