"""What the VALL-E models predict, and the masked cross-entropy and accuracies on it.

The models return a `CodebookPrediction` (logits, targets and the mask of positions that
count); the objective is `codebook_loss`, kept apart so a training module can weight, log
or replace it without touching the models. `valle_loss` adds, for an AR with a phoneme pointer
(`ValleConfig.phoneme_pointer`), the aligner's forward-sum loss and the advance head's
cross-entropy, each with its weight (`ValleLossConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ttsframe.modules.phoneme_pointer import advance_loss


@dataclass
class CodebookPrediction:
    """Logits over one codebook's ids (plus specials for the AR) at the positions predicted.

    Attributes:
        logits: (B, T, V).
        targets: (B, T) long; arbitrary where ``mask`` is False.
        mask: (B, T) bool, True where the loss counts.
        stages: (B,) long, the codebook index each row predicts (NAR only; None for the AR).
        aligner_loss: an AR with a phoneme pointer: the aligner's forward-sum loss (scalar); else None.
        advance: an AR with a phoneme pointer: (logits (B, T, A), moves (B, T) long, mask (B, T)),
            the advance head of steps 0 .. T - 1 and how many phonemes the next frame moved on.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    stages: torch.Tensor | None = None
    aligner_loss: torch.Tensor | None = None
    advance: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


@dataclass
class ValleLossConfig:
    """Weights of the AR's phoneme-pointer terms. The NAR has none; its task takes them all the same,
    so that one `model.loss` serves both train stages."""

    aligner_weight: float = 1.0  # of the aligner's forward-sum loss
    advance_weight: float = 1.0  # of the advance head's cross-entropy


def codebook_loss(prediction: CodebookPrediction, top_k: int = 10) -> dict[str, torch.Tensor]:
    """Token-averaged cross-entropy and top-1 / top-k accuracy over the masked positions.

    Top-k accuracy counts a position as right when the target is among the k largest
    logits (micro-averaged over tokens, as torchmetrics' MulticlassAccuracy(top_k=k) in the
    public VALL-E implementations).

    Args:
        prediction: output of `ValleAR.forward` or `ValleNAR.forward`.
        top_k: k of the second accuracy (clipped to the vocabulary size).

    Returns:
        {"loss", "accuracy_top1", f"accuracy_top{top_k}"}: scalars; the loss carries the
        gradient, the accuracies are detached. Zero when no position counts.
    """
    logits = prediction.logits.float()
    vocab = logits.shape[-1]
    flat_logits = logits.reshape(-1, vocab)  # (B*T, V)
    targets = prediction.targets.reshape(-1).clamp(0, vocab - 1)  # (B*T,); masked ones are ignored below
    weights = prediction.mask.reshape(-1).float()  # (B*T,)
    count = weights.sum().clamp(min=1.0)

    per_token = F.cross_entropy(flat_logits, targets, reduction="none")  # (B*T,)
    loss = (per_token * weights).sum() / count
    with torch.no_grad():
        top = flat_logits.topk(min(top_k, vocab), dim=-1).indices  # (B*T, k)
        hit_top1 = (top[:, 0] == targets).float()
        hit_topk = (top == targets[:, None]).any(dim=-1).float()
        accuracy_top1 = (hit_top1 * weights).sum() / count
        accuracy_topk = (hit_topk * weights).sum() / count
    return {"loss": loss, "accuracy_top1": accuracy_top1, f"accuracy_top{top_k}": accuracy_topk}


def valle_loss(prediction: CodebookPrediction, config: ValleLossConfig | None = None,
               top_k: int = 10) -> dict[str, torch.Tensor]:
    """`codebook_loss`, and with a phoneme pointer its terms in the total.

    Returns:
        `codebook_loss`'s dict; with a phoneme pointer also "ce" (the codebook cross-entropy),
        "aligner", "advance" and "advance_accuracy" (detached), and "loss" = ce + aligner_weight *
        aligner + advance_weight * advance.
    """
    metrics = codebook_loss(prediction, top_k)
    if prediction.advance is None:
        return metrics
    config = config or ValleLossConfig()
    advance, advance_accuracy = advance_loss(*prediction.advance)
    total = metrics["loss"] + config.aligner_weight * prediction.aligner_loss + config.advance_weight * advance
    return {**metrics, "loss": total, "ce": metrics["loss"], "aligner": prediction.aligner_loss,
            "advance": advance, "advance_accuracy": advance_accuracy}
