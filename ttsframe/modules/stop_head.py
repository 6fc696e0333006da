"""The stop head of the continuous-frame AR families (MELLE, DiTAR), and its decision rule.

Why a head of its own, with a scaled gradient: the stop loss is a positive-weighted BCE on one
decision per step, while the acoustic loss (MELLE's regression, DiTAR's diffusion) is a mean over
(frame, bin) elements. At initialisation the stop gradient reaching the LM's last layer was ~45x
the diffusion gradient at `ditar_cpu` size, and the LM's hidden state collapsed onto the single
direction the stop logit reads: on a toy whose next patch can only be known from the text, text
reliance stayed at 0 (`tests/unit/models/test_learning_checks.py`). So the head is a small MLP
(it can find "the text is used up and the audio is fading" itself) and the gradient it sends into
the LM is multiplied by ``grad_scale`` (forward unchanged). `grad/stop` against `grad/diffusion`
(`ttsframe.training.grad_norms`) shows the balance in every run.

Decision rule: a BCE with ``pos_weight`` w is minimised at sigmoid(logit) = w p / (w p + 1 - p),
p being the true stop probability, so logit = log w + logit(p). Comparing sigmoid(logit) with 0.5
(what generation did before) stops where p is only 1 / (1 + w), about 1% for w = 100.
`stop_probability` undoes the offset (the head keeps log w in the buffer ``logit_offset``, part of
its state dict), so the threshold is a probability whatever pos_weight was. It is still low by
default (MELLE 0.01, DiTAR 0.05): the probability that one given step is the last is spread over
the steps around the end, and at 0.5 a memorised MELLE never stopped (`MelleSamplingOptions`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x in the forward pass; the gradient flowing back through it is multiplied by ``scale``."""
    if scale == 1.0:
        return x
    return x.detach() + (x - x.detach()) * scale  # x - x.detach() is exactly 0: the forward is x, bit for bit


class StopHead(nn.Module):
    """h (..., d) -> stop logit (...).

    Args:
        d_model: width of the hidden state it reads.
        hidden: width of its MLP (0: one linear layer, the earlier design).
        grad_scale: factor on the gradient it sends into the hidden state (1: unscaled, 0: none).
        pos_weight: the BCE's weight on the positives, whose log `stop_probability` takes off.
    """

    def __init__(self, d_model: int, hidden: int = 0, grad_scale: float = 1.0, pos_weight: float = 1.0):
        super().__init__()
        if not 0.0 <= grad_scale <= 1.0:
            raise ValueError(f"stop grad_scale must be in [0, 1], got {grad_scale}")
        self.grad_scale = float(grad_scale)
        self.net = (nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, 1)) if hidden > 0
                    else nn.Linear(d_model, 1))
        self.register_buffer("logit_offset", torch.tensor(0.0))
        self.set_pos_weight(pos_weight)

    def set_pos_weight(self, pos_weight: float) -> None:
        """Records the training BCE's positive weight (the decision rule's offset, log w)."""
        if pos_weight <= 0:
            raise ValueError(f"stop pos_weight must be > 0, got {pos_weight}")
        self.logit_offset.fill_(math.log(pos_weight))

    @torch.no_grad()
    def set_constant(self, logit: float) -> None:
        """Makes the head give `logit` whatever it reads (tests, and pinning a run's length by hand):
        e.g. -50 never stops, +50 stops at once."""
        last = self.net[-1] if isinstance(self.net, nn.Sequential) else self.net
        last.weight.zero_()
        last.bias.fill_(logit)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(scale_gradient(hidden, self.grad_scale)).squeeze(-1)

    def stop_probability(self, logit: torch.Tensor) -> torch.Tensor:
        """The calibrated P(stop) of a logit this head gave (see the module docstring)."""
        return torch.sigmoid(logit.float() - self.logit_offset)
