"""The conditional flow-matching objective of the CosyVoice flow decoder.

A training step draws, per row: x0 ~ N(0, I), t ~ U(0, 1) (or cosine-scheduled,
t = 1 - cos(pi u / 2), which spends more steps near the noise), a prompt prefix (with
probability ``prompt_prob``, up to ``prompt_max_ratio`` of the row's frames, given as the
condition and left out of the loss) and whether all conditions are dropped together
(classifier-free guidance, ``cfg_dropout``); per batch, one attention pattern (`flow_masks`).
The model (`flow.CosyVoiceFlow.forward`) predicts the velocity at
x_t = (1 - (1 - sigma_min) t) x0 + t x1; the target is u = x1 - (1 - sigma_min) x0.

Prior loss (``prior_weight`` > 0; Matcha-TTS's, which CosyVoice's flow descends from and which
CosyVoice drops): the mean squared error between mu, the token conditioning after the length
regulator, and x1. It makes mu a regression estimate of the mel, which the estimator then only
has to refine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ttsframe.models.cosyvoice.flow_config import FlowConfig
from ttsframe.models.cosyvoice.flow_masks import MaskChoice, draw_mask_choice


@dataclass
class FlowDraws:
    """The random choices of one training step (pass them to replay a step exactly)."""

    noise: torch.Tensor  # (B, T, M) x0
    t: torch.Tensor  # (B,) flow times
    prompt_lengths: torch.Tensor  # (B,) long frames of the prompt prefix, 0: none
    keep: torch.Tensor  # (B,) bool, False: mu, speaker and prompt dropped (CFG; the loss then
    # covers the whole row)
    mask: MaskChoice


@dataclass
class FlowPrediction:
    velocity: torch.Tensor  # (B, T, M) predicted
    target: torch.Tensor  # (B, T, M) u = x1 - (1 - sigma_min) x0
    loss_mask: torch.Tensor  # (B, T) bool, real frames outside the prompt prefix
    prior_errors: torch.Tensor | None = None  # (B, T) squared error of mu against x1, averaged over bands

    def frame_errors(self) -> torch.Tensor:
        """(B, T) squared error per frame, averaged over bands; zeros outside the loss mask."""
        return ((self.velocity - self.target) ** 2).mean(-1) * self.loss_mask


def cfm_loss(prediction: FlowPrediction) -> torch.Tensor:
    """Masked MSE between predicted and target velocity (a scalar)."""
    return prediction.frame_errors().sum() / prediction.loss_mask.sum().clamp(min=1)


def prior_loss(prediction: FlowPrediction) -> torch.Tensor:
    """Masked MSE between mu and x1 over the loss mask's frames (a scalar; 0 without prior errors)."""
    if prediction.prior_errors is None:
        return prediction.velocity.new_zeros(())
    return (prediction.prior_errors * prediction.loss_mask).sum() / prediction.loss_mask.sum().clamp(min=1)


def flow_loss(prediction: FlowPrediction, prior_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """{"loss": cfm + prior_weight * prior, "cfm": ..., "prior": ...}, scalars."""
    cfm, prior = cfm_loss(prediction), prior_loss(prediction)
    return {"loss": cfm + prior_weight * prior, "cfm": cfm, "prior": prior}


def draw_step(
    config: FlowConfig,
    mel_lengths: torch.Tensor,
    n_frames: int,
    generator: torch.Generator | None = None,
) -> FlowDraws:
    """Draws noise, t, prompt prefixes, CFG drops and the mask pattern of one batch.

    Args:
        config: the model's config (rates and probabilities).
        mel_lengths: (B,) real frames per row; n_frames: the padded width T.
        generator: random source (drawn on its device); None: the global RNG.

    Returns:
        `FlowDraws` on the device of ``mel_lengths``.
    """
    device = generator.device if generator is not None else mel_lengths.device
    batch = mel_lengths.shape[0]

    def rand(*shape):
        return torch.rand(shape, generator=generator, device=device).to(mel_lengths.device)

    noise = torch.randn((batch, n_frames, config.n_mels), generator=generator, device=device)
    t = rand(batch)
    if config.t_schedule == "cosine":
        t = 1 - torch.cos(0.5 * math.pi * t)
    keep = rand(batch) >= config.cfg_dropout
    longest = torch.floor(config.prompt_max_ratio * mel_lengths.double()).long()  # (B,)
    prompt = torch.floor(rand(batch).double() * (longest + 1)).long().minimum(longest)
    prompt = prompt * (rand(batch) < config.prompt_prob)
    mask = draw_mask_choice(config.mask_probs, config.chunk_tokens, generator)
    return FlowDraws(noise.to(mel_lengths.device), t, prompt, keep, mask)
