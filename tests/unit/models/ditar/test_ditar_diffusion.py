"""DiTAR diffusion: v-prediction identities, exact DDIM on a known velocity, the temperature rule, CFG."""

import math

import pytest
import torch

from ttsframe.models.ditar.diffusion import (
    add_noise, eps_from_v, guided, noise_step, sample, training_times, v_target, x0_from_v,
)


def test_v_conversions_recover_x0_and_eps():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 4, 3, generator=g), torch.randn(6, 4, 3, generator=g)
    t = torch.tensor([0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
    x_t, v = add_noise(x0, eps, t), v_target(x0, eps, t)
    torch.testing.assert_close(x0_from_v(x_t, v, t), x0)
    torch.testing.assert_close(eps_from_v(x_t, v, t), eps)
    torch.testing.assert_close(x_t[0], x0[0])  # t = 0: data
    torch.testing.assert_close(x_t[-1], eps[-1], atol=1e-6, rtol=0)  # t = 1: noise
    torch.testing.assert_close(v[-1], -x0[-1], atol=1e-6, rtol=0)
    # v = d x_t / d phi with phi = pi t / 2
    dt = 1e-3
    dphi = 0.5 * math.pi * dt
    x0, eps, t = x0[1:-1], eps[1:-1], t[1:-1]
    numeric = (add_noise(x0, eps, t + dt) - add_noise(x0, eps, t - dt)) / (2 * dphi)
    torch.testing.assert_close(numeric, v[1:-1], atol=1e-3, rtol=1e-3)


def exact_velocity(x0):
    """The true v of a point mass at x0: eps = (x_t - alpha x0) / sigma, v = alpha eps - sigma x0."""
    def velocity(x, t):
        alpha, sigma = torch.cos(0.5 * math.pi * t)[:, None, None], torch.sin(0.5 * math.pi * t)[:, None, None]
        return alpha * (x - alpha * x0) / sigma - sigma * x0
    return velocity


@pytest.mark.parametrize("temperature", [0.0, 0.45, 1.0])
def test_ddim_lands_on_the_point_mass_for_every_temperature(temperature):
    x0 = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(2))
    out = sample(exact_velocity(x0), noise, nfe=5, solver="ddim", temperature=temperature)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)
    euler = sample(exact_velocity(x0), noise, nfe=50, solver="euler", temperature=temperature)
    torch.testing.assert_close(euler, x0, atol=0.1, rtol=0.1)


def test_temperature_is_the_grid_time_where_noise_enters():
    assert noise_step(10, 1.0) == 0  # x_1 is the noise: ordinary sampling
    assert noise_step(10, 0.5) == 5 and noise_step(10, 0.55) == 5 and noise_step(10, 0.1) == 9
    assert noise_step(10, 0.09) is None and noise_step(10, 0.0) is None  # deterministic
    def states(noise_value):
        calls = []

        def velocity(x, t):  # records the state it is called with; a toy model that ignores x
            calls.append((float(t[0]), x.clone()))
            return torch.ones_like(x)

        sample(velocity, torch.full((1, 2, 1), noise_value), nfe=4, solver="ddim", temperature=0.5)
        return calls

    calls, other = states(3.0), states(-1.0)
    assert [t for t, _ in calls] == [1.0, 0.75, 0.5, 0.25]
    assert not calls[0][1].any()  # tau < 1: the path starts at x_1 = 0...
    torch.testing.assert_close(calls[1][1], other[1][1])  # ...and is deterministic down to tau
    assert not torch.allclose(calls[2][1], other[2][1])
    # at t = 0.5 the state is alpha x0_hat + sigma eps, x0_hat = alpha x - sigma v from t = 0.75
    a75, s75, a50, s50 = (math.cos(math.pi * 0.375), math.sin(math.pi * 0.375), math.cos(math.pi / 4),
                          math.sin(math.pi / 4))
    x75 = calls[1][1][0, 0, 0].item()
    expected = a50 * (a75 * x75 - s75 * 1.0) + s50 * 3.0
    assert calls[2][1][0, 0, 0].item() == pytest.approx(expected, abs=1e-5)


def test_tau_zero_ignores_the_noise_and_tau_one_does_not():
    def velocity(x, t):
        return 0.5 * x + 0.1  # any smooth field
    a, b = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(3))
    for solver in ("ddim", "euler"):
        run = lambda noise, tau: sample(velocity, noise[None], 10, solver, tau)  # noqa: E731
        torch.testing.assert_close(run(a, 0.0), run(b, 0.0))
        assert not torch.allclose(run(a, 1.0), run(b, 1.0))
    with pytest.raises(ValueError, match="valid: ddim, euler"):
        sample(velocity, a[None], 10, "rk4", 1.0)


def test_guidance_formula():
    cond, uncond = torch.tensor([2.0]), torch.tensor([1.0])
    assert guided(cond, uncond, 0.0).item() == 2.0
    assert guided(cond, uncond, 1.0).item() == 3.0  # (1 + w) c - w u


def test_training_times_uniform_or_logit_normal():
    uniform = training_times(4000, torch.Generator().manual_seed(0), torch.device("cpu"))
    torch.testing.assert_close(uniform, torch.rand(4000, generator=torch.Generator().manual_seed(0)))
    noisy = training_times(4000, torch.Generator().manual_seed(0), torch.device("cpu"), logit_mean=1.0)
    assert ((noisy > 0) & (noisy < 1)).all() and 0.68 < noisy.mean() < 0.75  # E[sigmoid(1 + N(0, 1))] ~ 0.70
    assert abs(float(uniform.mean()) - 0.5) < 0.02
