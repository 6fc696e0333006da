"""How many CPU threads torch uses in a train stage, set the same way in every process.

A float reduction summed over 1 thread or over 2 can differ in the last bit, so two runs of one
training are bit-identical only with the same intra-op thread count. The count comes from
`trainer.threads`, or under SLURM from the job's `--cpus-per-task` (`SLURM_CPUS_PER_TASK`), or else
stays torch's own default (which follows OMP_NUM_THREADS, else the machine's cores). Each train
process sets it before it builds its model and says so in its log:

    train: torch threads 1 intra-op (trainer.threads), 2 inter-op

Inter-op threads only schedule independent ops side by side; they do not change any sum, and torch
lets a process set them once, before any parallel work, so they are logged but left alone.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from ttsframe.errors import ConfigError


def intra_op_threads(configured: int | None) -> tuple[int, str]:
    """The thread count a train process should use, and where it comes from."""
    if configured is not None:
        if int(configured) < 1:
            raise ConfigError(f"trainer.threads must be >= 1 (or null for the launcher's CPUs), got {configured}")
        return int(configured), "trainer.threads"
    slurm_cpus = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm_cpus.isdigit() and int(slurm_cpus) > 0:
        return int(slurm_cpus), "SLURM_CPUS_PER_TASK"
    return torch.get_num_threads(), "torch default"


@contextlib.contextmanager
def training_threads(configured: int | None) -> Iterator[int]:
    """Sets torch's intra-op threads for the block (and logs them); restores the caller's count after."""
    before = torch.get_num_threads()
    threads, source = intra_op_threads(configured)
    torch.set_num_threads(threads)
    print(f"train: torch threads {threads} intra-op ({source}), {torch.get_num_interop_threads()} inter-op")
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
