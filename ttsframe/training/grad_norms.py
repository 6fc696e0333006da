"""Per-loss-term gradient norms on a shared trunk: which term drives the model.

A total loss is a weighted sum of terms (DiTAR: diffusion + stop; MELLE: regression + KL + flux +
stop). When one term's gradient on the layers every term shares is ten times the others', that
term decides what the shared hidden state encodes and the rest learn little: DiTAR's and MELLE's
stop losses once did this to the text. So the tasks log, every `trainer.log_every_n_steps`
optimizer steps, the norm of each weighted term's gradient on the trunk's last layer as
`grad/<term>` (the curves and the report keep them beside the losses).

One extra backward per term, from the loss down to that layer only, on the logged steps.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn


def term_gradient_norms(terms: dict[str, torch.Tensor], parameters: Iterable[nn.Parameter]) -> dict[str, float]:
    """The L2 norm of each term's gradient on `parameters` (0 for a term that does not reach them).

    Args:
        terms: name -> the weighted scalar term, as it enters the total loss (graph still alive).
        parameters: the shared layer's parameters.
    """
    parameters = [p for p in parameters if p.requires_grad]
    norms = {}
    for name, value in terms.items():
        if not value.requires_grad:
            norms[name] = 0.0
            continue
        grads = torch.autograd.grad(value, parameters, retain_graph=True, allow_unused=True)
        squares = sum(float(g.detach().float().pow(2).sum()) for g in grads if g is not None)
        norms[name] = math.sqrt(squares)
    return norms


def last_layer(trunk: nn.Module) -> nn.Module:
    """The last block of a transformer trunk: ours (`blocks`) or a `transformers` backbone (`layers`)."""
    for owner in (trunk, getattr(trunk, "model", None)):
        for name in ("blocks", "layers"):
            layers = getattr(owner, name, None)
            if isinstance(layers, nn.ModuleList) and len(layers):
                return layers[-1]
    raise ValueError(f"{type(trunk).__name__} has no `blocks` or `layers` to take the last of")


def due(task) -> bool:
    """Whether this training step is one the curves record (`TrainingCurves` reads it after the step)."""
    trainer = getattr(task, "_trainer", None)
    if trainer is None or not task.training:
        return False
    if type(trainer.strategy).__name__.startswith("FSDP"):  # flattened, sharded parameters: not per layer
        return False
    every = max(1, int(trainer.log_every_n_steps))
    return (trainer.global_step + 1) % every == 0


def log_term_gradients(task, terms: dict[str, torch.Tensor], parameters: Iterable[nn.Parameter]) -> None:
    """Logs `grad/<term>` for each weighted term on the steps `due` says (see the module docstring)."""
    if not due(task):
        return
    for name, norm in term_gradient_norms(terms, parameters).items():
        task.log(f"grad/{name}", norm, on_step=True, on_epoch=False, batch_size=1)
