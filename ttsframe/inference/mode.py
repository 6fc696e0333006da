"""`evaluating(*models)`: eval mode and no autograd for one generation call, the modes restored after;
`inference_steps(generator)`: a generator resumed under `torch.inference_mode` at every step."""

from __future__ import annotations

import contextlib
from typing import Iterator, TypeVar

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


Item = TypeVar("Item")


def inference_steps(steps: Iterator[Item]) -> Iterator[Item]:
    """Yields what `steps` yields, running each of its steps under `torch.inference_mode`.

    The mode is per thread, so a generator that enters it once and yields from inside keeps it only
    while its consumer resumes it on that thread; a web server (the demo's) may resume it on
    another, where inference tensors made before could no longer be updated in place."""
    while True:
        with torch.inference_mode():
            try:
                item = next(steps)
            except StopIteration:
                return
        yield item
