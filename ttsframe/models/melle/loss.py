"""What MELLE predicts, and its training objective (Meng et al., 2024, sec. 3.3):

    L = L_reg + lambda * L_KL + beta * L_flux + gamma * L_stop

All spectrogram terms are computed in the model's normalised mel space, over the real frames
only (``frame_mask``), as means over (frame, mel bin) elements. The paper writes each term as a
sum over the same (frame, bin) elements, so one common normaliser keeps the paper's relative
weights lambda and beta while making the loss independent of batch size and utterance length.

* L_reg: L1 + squared L2 between the target y and both the coarse prediction y' (the latent
  module's output) and the post-net output y'':
  |y' - y| + (y' - y)^2 + |y'' - y| + (y'' - y)^2.
* L_KL: KL between the predicted Gaussian N(mu, diag sigma^2) and N(y, I), a unit Gaussian
  around the target frame. Per dimension, KL(N(m1, s1^2) || N(m2, s2^2)) =
  log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2; with m2 = y, s2 = 1:
  KL = 1/2 (sigma^2 + (mu - y)^2 - 1 - log sigma^2) >= 0 (zero iff mu = y and sigma = 1).
  It pulls mu towards the target (gradient kl_weight * (mu - y)) while keeping sigma near 1.
* L_flux: the spectrogram-flux term, -|mu_t - y_{t-1}|: the negative L1 distance between the
  predicted mean of frame t and the previous *target* frame (t >= 1). It is <= 0 and rewards
  predictions that move away from the last frame, against the static, over-smoothed frames that
  regression losses favour (and that make an AR model loop). It is linear in mu: its gradient
  is flux_weight per element whatever the distance, so where y_t ~ y_{t-1} (most frames) KL and
  flux balance at |mu - y| = flux_weight / kl_weight standard deviations.
* L_stop: binary cross-entropy of the per-step stop logit (1 on the step that holds the last
  frame), with ``stop_pos_weight`` on the positives (one per utterance against hundreds of
  negatives); mean over real steps.
* With a phoneme pointer (`MelleConfig.phoneme_pointer`), two more: the aligner's forward-sum loss
  times ``aligner_weight``, and the advance head's cross-entropy against how many phonemes (by the
  aligner) each next group moved on, mean over real groups, times ``advance_weight``.
* With a duration plan (`MelleConfig.duration_plan`), the predictor's MSE on log(1 + steps) per phoneme
  against the aligner's counts, times ``duration_weight`` (its own parameters only: it never reaches the LM).

Defaults: lambda (kl_weight) = 0.1, as MELLE's as we read it. beta (flux_weight) = 0.05, not
the 0.5 we read there (the public re-implementation Shy-98/MELLE uses 0.5 too): at 0.5 the
balance point above is 5 standard deviations, and on the text toy of
`tests/unit/models/test_learning_checks.py` mu settled 4.9 std from its target after 300 steps
(0.68 at 0.05), so mu said nothing about the frame. gamma (stop_weight) = 1 and stop_pos_weight =
100 are our choices; the stop head (`ttsframe.modules.stop_head`) scales its gradient into the
transformer down and undoes log(pos_weight) when it decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ttsframe.modules.duration_plan import duration_loss
from ttsframe.modules.phoneme_pointer import advance_loss


@dataclass
class MellePrediction:
    """Teacher-forced predictions of `Melle.forward`, normalised mel space.

    Attributes:
        coarse: (B, T, M) y', the latent module's frames (before the post-net).
        refined: (B, T, M) y'', after the post-net.
        mu, logvar: (B, T, M) the predicted Gaussian per frame.
        target: (B, T, M) y, the normalised target frames (zeros past each length).
        frame_mask: (B, T) bool, True at real frames.
        stop_logits: (B, S) one per decoder step (S = ceil(T / r)).
        stop_targets: (B, S) float, 1 at each row's last step.
        step_mask: (B, S) bool, True at real steps.
        aligner_loss: with a phoneme pointer, the aligner's forward-sum loss (scalar); else None.
        advance: with a phoneme pointer, (logits (B, S - 1, A), moves (B, S - 1) long, mask (B, S - 1)):
            the advance head of groups 0 .. S - 2 and how many phonemes the next group moved on.
        durations: with a duration plan, (predicted log(1 + steps) (B, L), the aligner's steps per
            phoneme (B, L), token_lengths (B,)).
    """

    coarse: torch.Tensor
    refined: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    target: torch.Tensor
    frame_mask: torch.Tensor
    stop_logits: torch.Tensor
    stop_targets: torch.Tensor
    step_mask: torch.Tensor
    aligner_loss: torch.Tensor | None = None
    advance: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    durations: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


@dataclass
class MelleLossConfig:
    kl_weight: float = 0.1  # lambda
    flux_weight: float = 0.05  # beta (balance with KL at flux / kl = 0.5 std: see the module docstring)
    stop_weight: float = 1.0  # gamma
    stop_pos_weight: float = 100.0  # BCE weight of the single positive (end) step
    aligner_weight: float = 1.0  # of the aligner's forward-sum loss (with a phoneme pointer)
    advance_weight: float = 1.0  # of the advance head's cross-entropy (with a phoneme pointer)
    duration_weight: float = 1.0  # of the duration predictor's MSE (with a duration plan)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, M) values over the (B, T) positions where mask is True (selected, not
    multiplied: an inf or NaN at padding stays out)."""
    count = (mask.sum() * values.shape[-1]).clamp(min=1).to(values.dtype)
    return torch.where(mask[..., None], values, 0.0).sum() / count


def regression_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 + squared L2 per element, masked mean. prediction, target (B, T, M); mask (B, T)."""
    error = prediction - target
    return _masked_mean(error.abs() + error.pow(2), mask)


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(target, I)) per element, masked mean (see the module docstring)."""
    kl = 0.5 * (logvar.exp() + (mu - target).pow(2) - 1.0 - logvar)
    return _masked_mean(kl, mask)


def flux_loss(mu: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-|mu_t - y_{t-1}| per element over frames t >= 1, masked mean; <= 0."""
    return -_masked_mean((mu[:, 1:] - target[:, :-1]).abs(), mask[:, 1:])


def stop_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Positive-weighted BCE with logits, mean over the real steps. All (B, S)."""
    weight = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    per_step = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight, reduction="none")
    return torch.where(mask, per_step, 0.0).sum() / mask.sum().clamp(min=1).to(per_step.dtype)


def melle_loss(prediction: MellePrediction, config: MelleLossConfig | None = None) -> dict[str, torch.Tensor]:
    """Every term and the weighted total.

    Returns:
        {"loss", "reg", "reg_coarse", "reg_refined", "kl", "flux", "stop", "stop_accuracy"} and, with a
        phoneme pointer, "aligner", "advance", "advance_accuracy" (and "duration" with a duration plan):
        scalars; "reg" = reg_coarse + reg_refined; "loss" = reg + kl_weight * kl + flux_weight * flux +
        stop_weight * stop (+ aligner_weight * aligner + advance_weight * advance + duration_weight * duration). "stop_accuracy" (detached) is the share of real
        steps whose stop decision (logit > log stop_pos_weight, generation's rule) is right.
    """
    config = config or MelleLossConfig()
    p = prediction
    target, mask = p.target.float(), p.frame_mask
    mu, logvar = p.mu.float(), p.logvar.float()
    reg_coarse = regression_loss(p.coarse.float(), target, mask)
    reg_refined = regression_loss(p.refined.float(), target, mask)
    kl = kl_loss(mu, logvar, target, mask)
    flux = flux_loss(mu, target, mask)
    stop = stop_loss(p.stop_logits.float(), p.stop_targets.float(), p.step_mask, config.stop_pos_weight)
    reg = reg_coarse + reg_refined
    total = reg + config.kl_weight * kl + config.flux_weight * flux + config.stop_weight * stop
    terms = {}
    if p.aligner_loss is not None:
        terms["aligner"] = p.aligner_loss
        total = total + config.aligner_weight * p.aligner_loss
    if p.advance is not None:
        terms["advance"], terms["advance_accuracy"] = advance_loss(*p.advance)
        total = total + config.advance_weight * terms["advance"]
    if p.durations is not None:
        terms["duration"] = duration_loss(*p.durations)
        total = total + config.duration_weight * terms["duration"]
    with torch.no_grad():
        # the decision generation takes: calibrated P(stop) > 0.5, i.e. logit > log(pos_weight)
        right = ((p.stop_logits > math.log(config.stop_pos_weight)) == (p.stop_targets > 0.5)) & p.step_mask
        stop_accuracy = right.sum() / p.step_mask.sum().clamp(min=1)
    return {"loss": total, "reg": reg, "reg_coarse": reg_coarse, "reg_refined": reg_refined, "kl": kl,
            "flux": flux, "stop": stop, "stop_accuracy": stop_accuracy.float(), **terms}
