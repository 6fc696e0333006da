"""DiTAR generation: the temperature rule end to end, stop decisions and length bounds, batching,
prompts, option checks."""

import dataclasses

import pytest
import torch

from ttsframe.models.ditar.generate import DiTARSamplingOptions, generate
from ttsframe.models.ditar.model import DiTAR
from ttsframe.models.ditar.presets import ditar_tiny

VOCAB, M = 12, 16


def model(stop_bias=-50.0, **changes):
    """A random tiny model whose stop head is forced by its bias (-50: never stops, +50: stops at once)."""
    torch.manual_seed(0)
    net = DiTAR(dataclasses.replace(ditar_tiny(VOCAB, n_mels=M), **changes))
    net.stop_head.set_constant(stop_bias)
    return net


def inputs(token_lengths=(3, 5), prompt_lengths=(9, 0)):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, VOCAB, (len(token_lengths), max(token_lengths)), generator=g)
    tokens = tokens * (torch.arange(max(token_lengths)) < torch.tensor(token_lengths)[:, None])
    prompt = torch.randn(len(prompt_lengths), max(prompt_lengths), M, generator=g) - 4.0
    return tokens, torch.tensor(token_lengths), prompt, torch.tensor(prompt_lengths)


def run(net, **options):
    return generate(net, *inputs(), DiTARSamplingOptions(max_frames_per_token=3, **options))


def test_temperature_zero_ignores_the_seed_and_one_does_not():
    net = model()
    for solver in ("ddim", "euler"):
        a, b = run(net, temperature=0.0, seed=0, solver=solver), run(net, temperature=0.0, seed=1, solver=solver)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        c, d = run(net, temperature=1.0, seed=0, solver=solver), run(net, temperature=1.0, seed=1, solver=solver)
        assert all(not torch.allclose(x, y) for x, y in zip(c, d))
        e = run(net, temperature=1.0, seed=0, solver=solver)
        assert all(torch.equal(x, y) for x, y in zip(c, e))  # the seed fixes the output


def test_stop_head_bounds_the_length():
    # never stops: runs to the budget of 3 frames per target phoneme (whole patches, cut to the budget)
    assert [len(x) for x in run(model(-50.0))] == [9, 15]
    assert [len(x) for x in run(model(+50.0))] == [4, 4]  # stops after the first patch
    assert [len(x) for x in run(model(+50.0), min_frames_per_token=2)] == [8, 12]  # not before the minimum
    assert all(x.shape[1] == M and torch.isfinite(x).all() for x in run(model(+50.0)))


@pytest.mark.parametrize("history", [0, 2])
def test_batched_rows_match_rows_alone(history):
    net = model(history=history)
    tokens, token_lengths, prompt, prompt_lengths = inputs()
    options = DiTARSamplingOptions(max_frames_per_token=3, temperature=0.0)
    together = generate(net, tokens, token_lengths, prompt, prompt_lengths, options)
    for row in range(2):
        alone = generate(net, tokens[row : row + 1, : token_lengths[row]], token_lengths[row : row + 1],
                         prompt[row : row + 1, : prompt_lengths[row]], prompt_lengths[row : row + 1], options)[0]
        torch.testing.assert_close(alone, together[row], atol=1e-4, rtol=1e-4)


def test_the_prompt_conditions_and_is_cut_to_whole_patches():
    net = model()
    tokens, token_lengths, prompt, prompt_lengths = inputs(prompt_lengths=(9, 9))
    options = DiTARSamplingOptions(max_frames_per_token=3, temperature=0.0)
    base = generate(net, tokens, token_lengths, prompt, prompt_lengths, options)
    cut = generate(net, tokens, token_lengths, prompt, torch.tensor([8, 8]), options)  # frame 9 is dropped anyway
    assert all(torch.equal(x, y) for x, y in zip(base, cut))
    other = generate(net, tokens, token_lengths, prompt + 1.0, prompt_lengths, options)
    assert all(not torch.allclose(x, y) for x, y in zip(base, other))


def test_guidance_changes_the_output():
    net = model()
    guided, plain = run(net, temperature=0.0, cfg_scale=3.0), run(net, temperature=0.0, cfg_scale=0.0)
    assert all(not torch.allclose(x, y) for x, y in zip(guided, plain))


@pytest.mark.parametrize("field, value", [
    ("nfe", -1), ("cfg_scale", -1.0), ("temperature", 1.5), ("solver", "rk4"), ("stop_threshold", 1.0),
    ("max_frames_per_token", 0.0), ("min_frames", 0),
])
def test_options_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DiTARSamplingOptions(**{field: value})


def test_a_pointer_model_generates_from_its_start_and_the_seed_fixes_it():
    from ttsframe.models.ditar.generate import _start_pointers, synthesize_mel

    net = model(phoneme_pointer=True).eval()
    tokens, token_lengths, prompt, prompt_lengths = inputs(token_lengths=(5, 5), prompt_lengths=(9, 0))
    start, pointers = _start_pointers(net, tokens, token_lengths, prompt, prompt_lengths,
                                      torch.tensor([2, 0]), torch.tensor([2, 0]))
    assert start.tolist() == [2, 0] and pointers.shape == (2, 3)
    assert pointers[0, 2] == 2 and pointers[1, 0] == 0 and (pointers[0, :2] <= 2).all()
    options = DiTARSamplingOptions(max_frames_per_token=3, nfe=2, seed=3)
    texts, prompt_texts = [torch.tensor([1, 2, 3]), torch.tensor([4, 5])], [torch.tensor([6, 7]), torch.tensor([8])]
    mels = [torch.randn(10, M) - 4, torch.randn(0, M)]
    first = synthesize_mel(net, texts, prompt_texts, mels, options)
    again = synthesize_mel(net, texts, prompt_texts, mels, options)
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and all(len(a) > 0 for a in first)


def test_nfe_zero_takes_the_regression_prior_alone():
    net = model(regression_prior=True)
    mu_only = run(net, nfe=0, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(mu_only, run(net, nfe=0, seed=1)))  # no noise enters
    sampled = run(net, seed=0)  # mu plus LocDiT's residual
    assert all(x.shape == y.shape and not torch.allclose(x, y) for x, y in zip(mu_only, sampled))
    with pytest.raises(ValueError, match="regression_prior"):
        run(model(), nfe=0)


def test_a_planned_pointer_follows_the_duration_plan_and_the_term_trains_only_its_predictor():
    from ttsframe.models.ditar.generate import synthesize_mel
    from ttsframe.models.ditar.loss import ditar_loss

    net = model(phoneme_pointer=True, duration_plan=True).eval()
    with torch.no_grad():
        net.advance_head.weight.zero_()
        net.advance_head.bias.copy_(torch.tensor([30.0, -30.0, -30.0, -30.0]))  # the head never moves on
        net.duration_predictor.out.weight.zero_()
        net.duration_predictor.out.bias.fill_(float(torch.tensor(2.0).log1p()))  # 2 patches per phoneme
    texts, prompt_texts = [torch.tensor([1, 2, 3]), torch.tensor([4, 5])], [torch.tensor([6, 7]), torch.tensor([8])]
    mels = [torch.randn(10, M) - 4, torch.randn(0, M)]
    options = DiTARSamplingOptions(max_frames_per_token=10, nfe=2, prompt_pace=False)
    planned = synthesize_mel(net, texts, prompt_texts, mels, options)
    assert [len(x) for x in planned] == [2 * net.config.patch_size * len(t) for t in texts]
    head = synthesize_mel(net, texts, prompt_texts, mels, dataclasses.replace(options, follow_plan=False))
    assert [len(x) for x in head] == [10 * len(t) for t in texts]  # the head's pointer never passes the text

    net.train()
    tokens, token_lengths, _, _ = inputs()
    prediction = net(tokens, token_lengths, torch.randn(2, 12, M) - 4, torch.tensor([12, 8]),
                     generator=torch.Generator().manual_seed(0))
    counts = prediction.durations[1]
    assert counts.sum(1).tolist() == prediction.patch_mask.sum(1).tolist()  # every real patch counted once
    ditar_loss(prediction)["duration"].backward()
    assert net.duration_predictor.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.lm.parameters())
