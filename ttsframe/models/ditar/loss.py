"""What DiTAR predicts in training, and its objective:

    L = diffusion_weight * L_diff + stop_weight * L_stop [+ alignment_weight * L_align]

* L_diff: squared error between LocDiT's v-prediction and the target v (see `diffusion.py`), at the
  noisy target patch's frames only (LocDiT's output holds nothing else) and at real frames only
  (the zero-padding of a row's last patch is masked out); a mean over (frame, dim) elements, so
  it does not depend on batch size or utterance length. Patches whose condition was dropped for
  classifier-free guidance count like the others: that is how the unconditional model learns.
* L_stop: binary cross-entropy of the per-patch stop logit (1 on each row's last patch), with
  ``stop_pos_weight`` on the positives (one per utterance against tens of negatives, fewer than
  MELLE's per-frame steps as a patch holds P frames); a mean over real patches.

* L_align (only when the model has ``alignment_heads``): the guided-attention loss of
  `ttsframe.modules.guided_attention` on those heads' attention from the audio steps to the text,
  against a diagonal of width ``alignment_sigma``, or (``alignment_target: aligner``) against the
  aligner's phoneme of each patch, ``alignment_width`` phonemes wide; then the aligner's own
  forward-sum loss is added too, times ``aligner_weight``.
* L_prior (with a regression prior): squared error between the prior head's mu_i and the clean
  patch at the real frames, times ``prior_weight`` (L_diff is then LocDiT's error on the residual).
* L_advance (with a phoneme pointer): cross-entropy of the advance head against how many phonemes
  (by the aligner) each next patch moved on, times ``advance_weight``; mean over real patches.
* L_duration (with a duration plan): the predictor's MSE on log(1 + patches) per phoneme against the
  aligner's counts, times ``duration_weight`` (its own parameters only: it never reaches the LM).

Defaults: both weights 1 (the paper adds the stop loss without a stated weight, as we read it);
stop_pos_weight = 20 is our choice. The stop gradient reaching the LM is scaled by the model's
``stop_grad_scale`` (`ttsframe.modules.stop_head`): unscaled, it was ~40x the diffusion gradient
on the LM's last block and the LM ignored the text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ttsframe.modules.guided_attention import aligned_prior, diagonal_loss, prior_loss
from ttsframe.modules.duration_plan import duration_loss
from ttsframe.modules.phoneme_pointer import advance_loss


@dataclass
class DiTARPrediction:
    """Teacher-forced predictions of `DiTAR.forward`, in the model's frame space.

    Attributes:
        v_pred: (B, N, P, D) LocDiT's v at every real patch (zeros at padding patches).
        v_target: (B, N, P, D) the target v (zeros at padding patches).
        frame_mask: (B, N, P) bool, True at real frames.
        stop_logits: (B, N) one per patch.
        stop_targets: (B, N) float, 1 at each row's last patch.
        patch_mask: (B, N) bool, True at real patches.
        text_attention: (B, H', N, L) the guided heads' attention from the audio steps to the text,
            or None (no guided heads).
        text_lengths: (B,) real phonemes per row (with text_attention).
        aligner_loss: the forward-sum loss of the model's aligner, or None (no aligner).
        aligned_phonemes: (B, N) long, the phoneme each patch speaks by the aligner (the guided
            heads' target), or None (their target is the diagonal).
        advance: with a phoneme pointer, (logits (B, N - 1, A), moves (B, N - 1) long, mask (B, N - 1)):
            the advance head of patches 0 .. N - 2 and how many phonemes the next patch moved on.
        prior: with a regression prior, (mu (B, N, P, D), the clean patches (B, N, P, D)).
        durations: with a duration plan, (predicted log(1 + patches) (B, L), the aligner's patches per
            phoneme (B, L), text_lengths (B,)).
    """

    v_pred: torch.Tensor
    v_target: torch.Tensor
    frame_mask: torch.Tensor
    stop_logits: torch.Tensor
    stop_targets: torch.Tensor
    patch_mask: torch.Tensor
    text_attention: torch.Tensor | None = None
    text_lengths: torch.Tensor | None = None
    aligner_loss: torch.Tensor | None = None
    aligned_phonemes: torch.Tensor | None = None
    advance: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    prior: tuple[torch.Tensor, torch.Tensor] | None = None
    durations: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


@dataclass
class DiTARLossConfig:
    diffusion_weight: float = 1.0
    stop_weight: float = 1.0
    stop_pos_weight: float = 20.0  # BCE weight of the single positive (last) patch
    alignment_weight: float = 1.0  # of the guided-attention loss, where the model has guided heads
    alignment_sigma: float = 0.2  # width of its diagonal, as a share of the utterance
    alignment_width: float = 1.0  # or, with an aligner, of its prior around the aligned phoneme, in phonemes
    aligner_weight: float = 1.0  # of the aligner's forward-sum loss
    advance_weight: float = 1.0  # of the phoneme pointer's advance cross-entropy
    duration_weight: float = 1.0  # of the duration plan's MSE (its own parameters only)
    prior_weight: float = 1.0  # of the regression prior's squared error

    def __post_init__(self):
        for name in ("alignment_sigma", "alignment_width"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("diffusion_weight", "stop_weight", "alignment_weight", "aligner_weight",
                     "advance_weight", "prior_weight", "duration_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.stop_pos_weight <= 0:
            raise ValueError(f"stop_pos_weight must be > 0, got {self.stop_pos_weight}")


def diffusion_loss(v_pred: torch.Tensor, v_target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Squared error per element, mean over the real frames. v (B, N, P, D); frame_mask (B, N, P)."""
    error = torch.where(frame_mask[..., None], (v_pred - v_target).pow(2), 0.0)  # selected: NaN stays out
    return error.sum() / (frame_mask.sum() * v_pred.shape[-1]).clamp(min=1).to(error.dtype)


def stop_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Positive-weighted BCE with logits, mean over the real patches. All (B, N)."""
    per_patch = F.binary_cross_entropy_with_logits(
        logits, targets, pos_weight=logits.new_tensor(pos_weight), reduction="none")
    return per_patch[mask].sum() / mask.sum().clamp(min=1).to(per_patch.dtype)


def ditar_loss(prediction: DiTARPrediction, config: DiTARLossConfig | None = None) -> dict[str, torch.Tensor]:
    """Every term and the weighted total.

    Returns:
        {"loss", "diffusion", "stop", "stop_accuracy"} and, with guided heads, "alignment": scalars;
        "loss" = diffusion_weight * diffusion + stop_weight * stop (+ alignment_weight * alignment).
        "stop_accuracy" (detached) is the share of real patches
        whose stop decision (logit > log stop_pos_weight, generation's rule) is right.
    """
    config = config or DiTARLossConfig()
    p = prediction
    diffusion = diffusion_loss(p.v_pred.float(), p.v_target.float(), p.frame_mask)
    stop = stop_loss(p.stop_logits.float(), p.stop_targets.float(), p.patch_mask, config.stop_pos_weight)
    total = config.diffusion_weight * diffusion + config.stop_weight * stop
    terms = {}
    steps = p.patch_mask.sum(dim=1)
    if p.text_attention is not None and p.aligned_phonemes is not None:
        prior = aligned_prior(p.aligned_phonemes, p.text_attention.shape[-1], config.alignment_width)
        terms["alignment"] = prior_loss(p.text_attention, prior, steps, p.text_lengths)
    elif p.text_attention is not None:
        terms["alignment"] = diagonal_loss(p.text_attention, steps, p.text_lengths, config.alignment_sigma)
    if "alignment" in terms:
        total = total + config.alignment_weight * terms["alignment"]
    if p.aligner_loss is not None:
        terms["aligner"] = p.aligner_loss
        total = total + config.aligner_weight * p.aligner_loss
    if p.prior is not None:
        mu, clean = p.prior
        terms["prior"] = diffusion_loss(mu.float(), clean.float(), p.frame_mask)
        total = total + config.prior_weight * terms["prior"]
    if p.advance is not None:
        terms["advance"], terms["advance_accuracy"] = advance_loss(*p.advance)
        total = total + config.advance_weight * terms["advance"]
    if p.durations is not None:
        terms["duration"] = duration_loss(*p.durations)
        total = total + config.duration_weight * terms["duration"]
    with torch.no_grad():
        # the decision generation takes: calibrated P(stop) > 0.5, i.e. logit > log(pos_weight)
        right = ((p.stop_logits > math.log(config.stop_pos_weight)) == (p.stop_targets > 0.5)) & p.patch_mask
        stop_accuracy = right.sum() / p.patch_mask.sum().clamp(min=1)
    return {"loss": total, "diffusion": diffusion, "stop": stop, "stop_accuracy": stop_accuracy.float(), **terms}
