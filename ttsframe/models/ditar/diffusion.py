"""DiTAR's diffusion: a variance-preserving cosine path, the v-prediction target, and the reverse-ODE
sampler with temperature and classifier-free guidance.

Path. With phi = pi t / 2, t in [0, 1] (in training t ~ U(0, 1), or logit-normal: `training_times`):

    x_t = alpha_t x0 + sigma_t eps,    alpha_t = cos(phi),  sigma_t = sin(phi),  eps ~ N(0, I)

x_0 is the data, x_1 pure noise, alpha^2 + sigma^2 = 1 throughout.

Target. v = alpha_t eps - sigma_t x0 = d x_t / d phi (Salimans & Ho's v; d x_t / d t = (pi / 2) v).
(x_t, v) is a rotation of (x0, eps), so the conversions are exact for any v:

    x0  = alpha_t x_t - sigma_t v
    eps = sigma_t x_t + alpha_t v

and v is defined at both ends (-x0 at t = 1, eps at t = 0), where eps- or x0-prediction are not.

Solvers, one step from t down to s with the model's v at (x_t, t) (`SOLVERS`):

    "ddim":  x_s = alpha_s x0_hat + sigma_s eps_hat   (a rotation by phi_t - phi_s; exact if v is)
    "euler": x_s = x_t - (phi_t - phi_s) v            (first order in the angle)

Classifier-free guidance (`guided`): v = (1 + w) v_cond - w v_uncond; w = 0 is no guidance.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (R, ...), t (R,)) -> v (R, ...)


def training_times(rows: int, generator: torch.Generator | None, device: torch.device,
                   logit_mean: float | None = None) -> torch.Tensor:
    """(rows,) diffusion times of a training step, drawn on the generator's device and moved to ``device``.

    ``logit_mean`` None: t ~ U(0, 1). A number m: t = sigmoid(m + n), n ~ N(0, 1) (the logit-normal
    of Esser et al., 2024); m > 0 spends more of training at high noise, where the denoiser must
    take the patch from its condition (the LM's h_i: the text) rather than from the noisy patch.
    """
    source = generator.device if generator is not None else device
    if logit_mean is None:
        return torch.rand(rows, generator=generator, device=source).to(device)
    return torch.sigmoid(logit_mean + torch.randn(rows, generator=generator, device=source)).to(device)


def alpha_sigma(t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos(pi t / 2), sin(pi t / 2) of per-row times (R,), shaped to broadcast over ``like`` (R, ...)."""
    phi = (0.5 * math.pi * t.float()).view(-1, *([1] * (like.dim() - 1)))
    return phi.cos().to(like.dtype), phi.sin().to(like.dtype)


def add_noise(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = alpha_t x0 + sigma_t eps; x0, eps (R, ...), t (R,)."""
    alpha, sigma = alpha_sigma(t, x0)
    return alpha * x0 + sigma * eps


def v_target(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """v = alpha_t eps - sigma_t x0; x0, eps (R, ...), t (R,)."""
    alpha, sigma = alpha_sigma(t, x0)
    return alpha * eps - sigma * x0


def x0_from_v(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x0 = alpha_t x_t - sigma_t v; x_t, v (R, ...), t (R,)."""
    alpha, sigma = alpha_sigma(t, x_t)
    return alpha * x_t - sigma * v


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """eps = sigma_t x_t + alpha_t v; x_t, v (R, ...), t (R,)."""
    alpha, sigma = alpha_sigma(t, x_t)
    return sigma * x_t + alpha * v


def ddim_step(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x_s = alpha_s x0_hat + sigma_s eps_hat (deterministic DDIM); times (R,)."""
    return add_noise(x0_from_v(x_t, v, t), eps_from_v(x_t, v, t), s)


def euler_step(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x_s = x_t - (phi_t - phi_s) v (Euler on d x / d phi = v); times (R,)."""
    dphi = (0.5 * math.pi * (t - s).float()).view(-1, *([1] * (x_t.dim() - 1)))
    return x_t - dphi.to(x_t.dtype) * v


SOLVERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddim": ddim_step,
    "euler": euler_step,
}


def guided(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: (1 + w) v_cond - w v_uncond."""
    return (1.0 + scale) * v_cond - scale * v_uncond


def noise_step(nfe: int, temperature: float) -> int | None:
    """Index k of the grid time 1 - k / nfe at which noise enters: the first one <= temperature.

    None when that time would be 0 (temperature < 1 / nfe): no noise at all.
    """
    k = math.ceil(round(nfe * (1.0 - temperature), 6))
    return k if k < nfe else None


def sample(velocity: Velocity, noise: torch.Tensor, nfe: int, solver: str, temperature: float) -> torch.Tensor:
    """Solves the reverse ODE from t = 1 to t = 0 on a uniform grid of ``nfe`` steps.

    Temperature tau in [0, 1] is the time at which noise enters the reverse ODE (the paper's
    Algorithm 1 as we read it). The path starts from x_1 = 0, the mean of the noise, and follows the
    deterministic solver; at the first grid time t_k <= tau the state is replaced by a fresh draw
    of the forward path around the current estimate, x_{t_k} = alpha x0_hat + sigma eps (x0_hat
    from the model call at t_{k-1}; ``noise`` is eps), and the deterministic solver carries on.

    * tau = 1: x_1 = eps (alpha_1 = 0, sigma_1 = 1): ordinary ODE sampling from Gaussian noise.
    * tau < 1 / nfe (tau = 0 among them): no noise ever; the output is a function of the
      condition only (the "greedy" end: two seeds give the same patch).
    * in between, tau is snapped down to the grid (its resolution is 1 / nfe).

    Args:
        velocity: the (guided) model, (x_t (R, ...), t (R,)) -> v (R, ...).
        noise: (R, ...) eps, standard normal.
        nfe: model calls (grid steps), >= 1.
        solver: a key of `SOLVERS`.
        temperature: tau in [0, 1].

    Returns:
        (R, ...) the sample at t = 0.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
    step, enter = SOLVERS[solver], noise_step(nfe, temperature)
    rows = noise.shape[0]
    grid = torch.linspace(1.0, 0.0, nfe + 1, device=noise.device)
    x = noise.clone() if enter == 0 else torch.zeros_like(noise)  # x_1
    for k in range(nfe):
        t, s = grid[k].expand(rows), grid[k + 1].expand(rows)  # (R,) each
        v = velocity(x, t)
        if enter is not None and k + 1 == enter:
            x = add_noise(x0_from_v(x, v, t), noise, s)
        else:
            x = step(x, v, t, s)
    return x
