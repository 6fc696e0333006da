"""What DiTAR predicts in training, and its objective:

    L = diffusion_weight * L_diff + stop_weight * L_stop

* L_diff: squared error between LocDiT's v-prediction and the target v (see `diffusion.py`), at the
  noisy target patch's frames only (LocDiT's output holds nothing else) and at real frames only
  (the zero-padding of a row's last patch is masked out); a mean over (frame, dim) elements, so
  it does not depend on batch size or utterance length. Patches whose condition was dropped for
  classifier-free guidance count like the others: that is how the unconditional model learns.
* L_stop: binary cross-entropy of the per-patch stop logit (1 on each row's last patch), with
  ``stop_pos_weight`` on the positives (one per utterance against tens of negatives, fewer than
  MELLE's per-frame steps as a patch holds P frames); a mean over real patches.

Defaults: both weights 1 (the paper adds the stop loss without a stated weight, as we read it);
stop_pos_weight = 20 is our choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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
    """

    v_pred: torch.Tensor
    v_target: torch.Tensor
    frame_mask: torch.Tensor
    stop_logits: torch.Tensor
    stop_targets: torch.Tensor
    patch_mask: torch.Tensor


@dataclass
class DiTARLossConfig:
    diffusion_weight: float = 1.0
    stop_weight: float = 1.0
    stop_pos_weight: float = 20.0  # BCE weight of the single positive (last) patch

    def __post_init__(self):
        for name in ("diffusion_weight", "stop_weight"):
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
        {"loss", "diffusion", "stop", "stop_accuracy"}: scalars; "loss" = diffusion_weight *
        diffusion + stop_weight * stop. "stop_accuracy" (detached) is the share of real patches
        whose stop decision (logit > 0) is right.
    """
    config = config or DiTARLossConfig()
    p = prediction
    diffusion = diffusion_loss(p.v_pred.float(), p.v_target.float(), p.frame_mask)
    stop = stop_loss(p.stop_logits.float(), p.stop_targets.float(), p.patch_mask, config.stop_pos_weight)
    total = config.diffusion_weight * diffusion + config.stop_weight * stop
    with torch.no_grad():
        right = ((p.stop_logits > 0) == (p.stop_targets > 0.5)) & p.patch_mask
        stop_accuracy = right.sum() / p.patch_mask.sum().clamp(min=1)
    return {"loss": total, "diffusion": diffusion, "stop": stop, "stop_accuracy": stop_accuracy.float()}
