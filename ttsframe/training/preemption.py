"""Step-exact preemption of a train job under SLURM: SIGUSR1 -> `last.ckpt` at a step boundary -> requeue.

SLURM sends the job's tasks SIGUSR1 `launcher.signal_seconds` before the time limit (and
`scancel --signal=USR1 <job>` sends it at once). Lightning's own handler (SLURMEnvironment with
`auto_requeue=True`) saves a checkpoint from inside the signal handler, wherever the step is
(e.g. after the optimizer step but before the data position advanced), and a run resumed from it
can train a batch twice. Here the handler only sets a flag (`install_handler`); `RequeueOnSignal`
acts on it at the end of the next optimizer step, on every rank at the same step:

1. `last.ckpt` is saved as the periodic saves write it (so the resume is exact, see
   `ttsframe.training.resume`);
2. rank 0 runs `scontrol requeue $SLURM_JOB_ID`; SLURM ends the job and queues it again, and the
   requeued job resumes from that checkpoint;
3. every process leaves training with `Preempted` (a SystemExit, code 0 once requeued): the stage
   is not marked done.

If the requeue fails, rank 0 exits with code 1 (the job fails; running the stage again resumes).
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Callable

import lightning as L

_signalled = {"flag": False}


def _on_signal(signum, frame) -> None:
    _signalled["flag"] = True  # nothing else in a signal handler: the step goes on undisturbed


def install_handler(signum: int = signal.SIGUSR1) -> None:
    """`signum` now only sets the preemption flag (and the flag starts cleared)."""
    _signalled["flag"] = False
    signal.signal(signum, _on_signal)


def signalled() -> bool:
    return _signalled["flag"]


class Preempted(SystemExit):
    """Leaves the stage after the checkpoint of a preemption (code 0: requeued; 1: not)."""


def requeue_job() -> tuple[bool, str]:
    """`scontrol requeue $SLURM_JOB_ID`: (whether it worked, what scontrol said)."""
    job = os.environ.get("SLURM_JOB_ID", "")
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    return done.returncode == 0, (done.stderr or done.stdout).strip()


class RequeueOnSignal(L.Callback):
    """After the signal: `last.ckpt` at the next step boundary, requeue, stop (see the module docstring).

    Args:
        save_last: saves `last.ckpt` now, as the periodic saves do (`LastCheckpoint.save_now`).
        requeue: requeues the job; returns (ok, message).
    """

    def __init__(self, save_last: Callable[[L.Trainer], None], requeue: Callable[[], tuple[bool, str]] = requeue_job):
        self.save_last, self.requeue = save_last, requeue
        self._step_before = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        self._step_before = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self._step_before:  # gradient accumulation: no optimizer step yet
            return
        if not trainer.strategy.reduce_boolean_decision(signalled(), all=False):  # any rank signalled
            return
        step = trainer.global_step
        self.save_last(trainer)
        for logger in trainer.loggers:
            logger.save()
        trainer.strategy.barrier("preempted")
        if not trainer.is_global_zero:
            raise Preempted(0)
        ok, message = self.requeue()
        job = os.environ.get("SLURM_JOB_ID")
        if not ok:
            raise Preempted(f"preempted: saved last.ckpt at step {step}, but `scontrol requeue {job}` failed "
                            f"({message}); run the stage again to resume from it")
        print(f"preempted: SIGUSR1; saved last.ckpt at step {step}; requeued job {job}", flush=True)
        raise Preempted(0)
