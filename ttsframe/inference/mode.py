"""`evaluating(*models)`: eval mode and no autograd for one generation call, the modes restored after."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def evaluating(*models: nn.Module) -> Iterator[None]:
    """eval() and `torch.inference_mode` for the duration; each model's training flag is restored after."""
    modes = [model.training for model in models]
    for model in models:
        model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for model, mode in zip(models, modes):
            model.train(mode)
