"""AdamW with decoupled weight decay on matrices only, and warmup + decay learning-rate schedules."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ttsframe.config.training import SCHEDULES

OPTIMIZERS = ("adamw",)
_NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed weights, and the rest (biases, norm and embedding parameters).

    Decided by parameter name and module type, not by shape: under FSDP parameters are flat shards.
    """
    no_decay: set[int] = set()
    for module in model.modules():
        if isinstance(module, _NO_DECAY_MODULES):
            no_decay.update(id(p) for p in module.parameters(recurse=False))
    decay, keep = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (keep if name.endswith("bias") or id(param) in no_decay else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def lr_lambda(schedule: str, warmup_steps: int, decay_steps: int, min_lr_ratio: float) -> Callable[[int], float]:
    """step -> multiplier of the peak lr: linear warmup to 1 over `warmup_steps`, then the schedule.

    cosine / linear go from 1 to `min_lr_ratio` at `decay_steps` and stay there; noam decays as
    sqrt(warmup / step) (floored at `min_lr_ratio`); constant stays at 1.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    warmup = max(int(warmup_steps), 0)
    span = max(int(decay_steps) - warmup, 1)

    def multiplier(step: int) -> float:  # a closure, so LambdaLR's state_dict never stores the horizon
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / span, 1.0)
        if schedule == "cosine":
            return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if schedule == "linear":
            return min_lr_ratio + (1 - min_lr_ratio) * (1 - progress)
        if schedule == "noam":
            return max(min_lr_ratio, math.sqrt(max(warmup, 1) / (step + 1)))
        return 1.0

    return multiplier


def build_optimizer(model: nn.Module, optim: dict, max_steps: int) -> dict:
    """Lightning's `configure_optimizers` answer: AdamW plus a per-step LambdaLR.

    Args:
        model: the module whose parameters are trained.
        optim: `OptimConfig` fields (a plain dict, as stored in the checkpoint's hyperparameters).
        max_steps: the decay horizon when `optim["decay_steps"]` is None.
    """
    name = optim.get("name", "adamw")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    groups = param_groups(model, float(optim.get("weight_decay", 0.01)))
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    # Multi-tensor (foreach) kernels on CUDA, not fused: Lightning's mixed-precision plugins refuse
    # gradient clipping with a fused optimizer (it unscales internally), seen on an H200 in bf16-mixed.
    optimizer = torch.optim.AdamW(groups, lr=float(optim.get("lr", 1e-3)), betas=tuple(optim.get("betas", (0.9, 0.95))),
                                  eps=float(optim.get("eps", 1e-8)), foreach=on_cuda or None)
    decay_steps = optim.get("decay_steps") or max_steps
    multiplier = lr_lambda(optim.get("schedule", "cosine"), int(optim.get("warmup_steps", 0)), int(decay_steps),
                           float(optim.get("min_lr_ratio", 0.0)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}


def task_optimizer(task) -> dict:
    """`configure_optimizers` of a Lightning task with `.model` and `hparams.optim`: AdamW and the
    schedule, whose cosine/linear horizon defaults to the trainer's max_steps."""
    max_steps = task.trainer.max_steps if task._trainer is not None else -1
    return build_optimizer(task.model, task.hparams.optim or {}, max(max_steps, 1))
