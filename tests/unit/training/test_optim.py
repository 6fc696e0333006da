"""AdamW parameter groups and the warmup + decay schedules."""

import math

import pytest
import torch
from torch import nn

from ttsframe.training.optim import build_optimizer, lr_lambda, param_groups


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.linear = nn.Linear(4, 4)
        self.head = nn.Parameter(torch.zeros(2, 3, 4))  # a 3-D weight (per-stage heads)


def test_no_decay_on_norms_biases_and_embeddings():
    model = Tiny()
    decay, keep = param_groups(model, weight_decay=0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and keep["weight_decay"] == 0.0
    assert sorted(names[id(p)] for p in decay["params"]) == ["head", "linear.weight"]
    assert sorted(names[id(p)] for p in keep["params"]) == [
        "embedding.weight", "linear.bias", "norm.bias", "norm.weight"]


@pytest.mark.parametrize("schedule", ["cosine", "linear", "noam", "constant"])
def test_warmup_then_schedule(schedule):
    f = lr_lambda(schedule, warmup_steps=10, decay_steps=110, min_lr_ratio=0.1)
    warm = [f(s) for s in range(10)]
    assert warm == sorted(warm) and warm[0] == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    after = [f(s) for s in range(10, 300)]
    assert all(a >= b - 1e-12 for a, b in zip(after, after[1:])), "never rises after the warmup"
    assert all(0.1 - 1e-9 <= v <= 1.0 for v in after)
    if schedule in ("cosine", "linear"):
        assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(1000) == pytest.approx(0.1)
    if schedule == "noam":
        assert f(39) == pytest.approx(math.sqrt(10 / 40))
    if schedule == "constant":
        assert set(after) == {1.0}


def test_unknown_schedule_lists_valid_ones():
    with pytest.raises(ValueError, match="cosine"):
        lr_lambda("step", 1, 10, 0.0)


def test_scheduler_drives_the_optimizer_lr():
    config = build_optimizer(Tiny(), {"lr": 1e-2, "warmup_steps": 4, "schedule": "cosine", "min_lr_ratio": 0.0},
                             max_steps=8)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2])
    assert lrs[4] > lrs[7] > 0
    # The horizon is not in the scheduler's state: a resumed run may extend max_steps.
    assert scheduler.state_dict()["lr_lambdas"] == [None, None]
