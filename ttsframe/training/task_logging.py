"""What the Lightning tasks log from a step: the loss and its terms, and text reliance.

Text reliance is the known failure of small AR TTS models: a loss that falls while the model
predicts the audio from the acoustic context alone. Validation scores the batch once more with
each row's text replaced by another row's (the batch rolled by one); `val/text_reliance` = that
loss minus the loss with the row's own text, near 0 when the model ignores the text.
"""

from __future__ import annotations

from typing import Callable

import torch

from ttsframe.data.collate import Batch


def log_losses(task, metrics: dict[str, torch.Tensor], split: str, weight: int) -> dict:
    """Logs `<split>/loss` (progress bar), every other term, and in training the learning rate.

    Training logs per step (no GPU sync); validation averages over the epoch, each batch weighted
    by `weight` (e.g. its real frames), synced across ranks. Returns those `log` options.
    """
    train = split == "train"
    options = dict(on_step=train, on_epoch=not train, batch_size=weight, sync_dist=not train)
    task.log(f"{split}/loss", metrics["loss"].detach(), prog_bar=True, **options)
    task.log_dict({f"{split}/{k}": v.detach() for k, v in metrics.items() if k != "loss"}, **options)
    if train:
        task.log("train/lr", task.optimizers().param_groups[0]["lr"], on_step=True, batch_size=1)
    return options


def other_text(tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each row's text replaced by the next row's (cyclically) whose text differs: (B, L) phonemes,
    (B,) lengths -> the same shapes; None when every row reads the same text."""
    batch = len(lengths)
    rows = [tuple(tokens[i, : int(lengths[i])].tolist()) for i in range(batch)]
    partners = []
    for i in range(batch):
        later = ((i + shift) % batch for shift in range(1, batch))
        partner = next((j for j in later if rows[j] != rows[i]), None)
        if partner is None:
            return None
        partners.append(partner)
    index = torch.tensor(partners, device=tokens.device)
    return tokens[index], lengths[index]


def log_text_reliance(task, batch: Batch, own: torch.Tensor,
                      loss_with_text: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], options: dict,
                      term: str = "loss") -> None:
    """Logs `val/<term>_other_text` and `val/text_reliance` (other - own) for a batch of >= 2 rows,
    unless all rows read the same text.

    Args:
        own: the batch's `term` with its own text.
        loss_with_text: (text (B, L), text_lengths (B,)) -> the same `term` with that text
            (same audio, same random draws).
        options: the `log` options of the validation step.
    """
    replaced = other_text(batch.tokens, batch.token_lengths)
    if replaced is None:
        return
    other = loss_with_text(*replaced).detach()
    task.log(f"val/{term}_other_text", other, **options)
    task.log("val/text_reliance", other - own.detach(), **options)
