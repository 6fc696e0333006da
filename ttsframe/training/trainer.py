"""`TrainerConfig` -> `lightning.Trainer`: devices, strategy, precision, checkpoints, SLURM.

Checkpoints of a train stage (`<stage dir>/checkpoints/`): `last.ckpt` every
`checkpoint_every_n_steps` and at the end, `best.ckpt` at the lowest `val/loss`, and with
`snapshot_every_n_steps` a kept `step<N>.ckpt` every N steps. Validation runs
every `val_check_interval` optimizer steps, so every checkpoint falls on a step boundary (what
exact resume needs, see `ttsframe.training.resume`). Under SLURM a SIGUSR1 saves `last.ckpt` at the
next step boundary and requeues the job (`ttsframe.training.preemption`).
"""

from __future__ import annotations

import inspect
import os
import signal
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, Strategy
from torch.nn.parallel import DistributedDataParallel

from ttsframe.training.callbacks import LastCheckpoint, Snapshots
from ttsframe.training.preemption import RequeueOnSignal, install_handler

STRATEGIES = ("auto", "ddp", "ddp_spawn", "fsdp")
# No buffer broadcast in DDP's forward (a collective per validation batch would hang ranks that have
# fewer batches); torch >= 2.13 names it forward_sync_buffers, older ones broadcast_buffers.
_NO_FORWARD_BUFFER_SYNC = ({"forward_sync_buffers": False}
                           if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                           else {"broadcast_buffers": False})
ACCELERATORS = ("auto", "cpu", "gpu")


def uses_gpu(accelerator: str) -> bool:
    return accelerator == "gpu" or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(precision: str | None, accelerator: str) -> str:
    """The configured precision, or bf16-mixed on a GPU that has bf16 and 32-true elsewhere."""
    if precision:
        return precision
    if uses_gpu(accelerator) and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def world_size(tcfg: Any) -> int:
    """Processes of the run: devices per node x nodes ("auto"/-1: the visible GPUs, or 1 on CPU)."""
    devices = tcfg.devices
    if devices in ("auto", -1, "-1"):
        count = torch.cuda.device_count() if uses_gpu(tcfg.accelerator) else 1
    elif isinstance(devices, int):
        count = devices
    elif isinstance(devices, str):  # "4", or GPU ids "0,1"
        count = len([d for d in devices.split(",") if d.strip()]) if "," in devices else int(devices)
    else:  # a list of GPU ids
        count = len(devices)
    return max(count, 1) * int(tcfg.num_nodes)


def build_strategy(tcfg: Any) -> Strategy | str:
    """DDP without buffer syncs in forward (ranks' validation batch counts differ), or FSDP."""
    name = tcfg.strategy
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if name == "auto":
        name = "ddp" if world_size(tcfg) > 1 else "auto"
    if name in ("ddp", "ddp_spawn"):
        return DDPStrategy(start_method="spawn" if name == "ddp_spawn" else "popen", **_NO_FORWARD_BUFFER_SYNC,
                           find_unused_parameters=bool(tcfg.find_unused_parameters))
    if name == "fsdp":
        from ttsframe.modules.transformer import TransformerBlock

        # Full state dicts: checkpoints keep the same layout as DDP's, one file readable anywhere.
        return FSDPStrategy(auto_wrap_policy={TransformerBlock}, state_dict_type="full")
    return "auto"


def build_plugins() -> list:
    """Under a SLURM batch job: Lightning's SLURM environment (ranks from SLURM) without its
    requeue handler; SIGUSR1 only sets the flag that `RequeueOnSignal` acts on at a step boundary.
    Each task says in the job log where it runs (`slurm: task 1 of 2 on n2 (node 1), job 7, restart 0`)."""
    if not SLURMEnvironment.detect():
        return []
    install_handler(signal.SIGUSR1)
    env = os.environ
    print(f"slurm: task {env.get('SLURM_PROCID')} of {env.get('SLURM_NTASKS')} on {env.get('SLURMD_NODENAME')} "
          f"(node {env.get('SLURM_NODEID')}), job {env.get('SLURM_JOB_ID')}, restart {env.get('SLURM_RESTART_COUNT', 0)}")
    return [SLURMEnvironment(auto_requeue=False)]


def checkpoint_callbacks(stage_dir: Path, every_n_steps: int, snapshot_every: int | None = None) -> list[ModelCheckpoint]:
    """last.ckpt (first: preemption saves through it), best.ckpt and, every `snapshot_every` steps, step<N>.ckpt."""
    ckpt_dir = Path(stage_dir) / "checkpoints"
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/loss", mode="min", save_top_k=1,
                           auto_insert_metric_name=False, enable_version_counter=False)
    snapshots = [Snapshots(ckpt_dir, int(snapshot_every))] if snapshot_every else []
    return [LastCheckpoint(ckpt_dir, every_n_steps), best, *snapshots]


def build_trainer(tcfg: Any, stage_dir: Path, logger: Logger | bool, callbacks: Sequence[Callback] = ()) -> L.Trainer:
    """A Trainer for one train stage.

    Args:
        tcfg: `TrainerConfig` (dataclass or DictConfig).
        stage_dir: `exp/<recipe>/<stage name>`; checkpoints and SLURM's hpc checkpoints go here.
        logger: from `ttsframe.training.loggers.build_logger`, or False.
        callbacks: more callbacks (the stage's data position and summary).
    """
    if tcfg.accelerator not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {tcfg.accelerator!r}; valid: {', '.join(ACCELERATORS)}")
    accumulate = int(tcfg.accumulate_grad_batches)
    if uses_gpu(tcfg.accelerator):
        torch.set_float32_matmul_precision("high")  # TF32 for what runs outside bf16 autocast
    plugins = build_plugins()
    checkpoints = checkpoint_callbacks(stage_dir, int(tcfg.checkpoint_every_n_steps), tcfg.snapshot_every_n_steps)
    # after the given callbacks (the data position has counted the batch), before the checkpoint ones
    preemption = [RequeueOnSignal(checkpoints[0].save_now)] if plugins else []
    return L.Trainer(
        accelerator=tcfg.accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=build_strategy(tcfg),
        precision=resolve_precision(tcfg.precision, tcfg.accelerator),
        plugins=plugins,
        max_steps=tcfg.max_steps,
        val_check_interval=int(tcfg.val_check_interval) * accumulate,  # Lightning counts batches
        check_val_every_n_epoch=None,  # the train stream is one endless epoch
        limit_val_batches=tcfg.limit_val_batches,
        num_sanity_val_steps=tcfg.num_sanity_val_steps,
        log_every_n_steps=tcfg.log_every_n_steps,
        gradient_clip_val=tcfg.gradient_clip_val,
        accumulate_grad_batches=accumulate,
        callbacks=[*callbacks, *preemption, *checkpoints],
        logger=logger,
        default_root_dir=str(stage_dir),
        use_distributed_sampler=False,  # the data module splits its stream over ranks itself
        enable_progress_bar=bool(tcfg.progress_bar),
        enable_model_summary=bool(tcfg.progress_bar),
    )
