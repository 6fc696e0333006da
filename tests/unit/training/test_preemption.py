"""SIGUSR1 in the middle of a step: `RequeueOnSignal` saves at the step boundary, and a run resumed
from that checkpoint ends with the weights of an uninterrupted one (tiny model, CPU, no SLURM: the
requeue is a function that records its call; the real job is in tests/integration/test_slurm_jobs.py),
and the hpc checkpoints Lightning saves from its own signal handler are not resumed from."""

import os
import signal

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ttsframe.training.callbacks import LastCheckpoint
from ttsframe.training.preemption import Preempted, RequeueOnSignal, install_handler
from ttsframe.training.resume import DataPosition, ResumableData, find_resume_checkpoint

MAX_STEPS = 6


class Tiny(L.LightningModule):
    """A linear layer behind dropout; sends itself SIGUSR1 in training step `signal_at`, before its optimizer step."""

    def __init__(self, signal_at: int | None = None):
        super().__init__()
        torch.manual_seed(0)  # the same initial weights in every run
        self.net = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(4, 1))
        self.signal_at, self.batches_seen = signal_at, 0

    def training_step(self, batch, batch_idx):
        self.batches_seen += 1
        if self.signal_at is not None and self.batches_seen == self.signal_at:
            os.kill(os.getpid(), signal.SIGUSR1)  # the flag is set now, mid-step
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)  # (B, 1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Data(L.LightningDataModule):
    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g)), batch_size=4)


def fit(tmp_path, module, accumulate, resume=None, requeued=None):
    position, last = DataPosition(seed=0), LastCheckpoint(tmp_path / "checkpoints", every_n_train_steps=100)
    requeue = RequeueOnSignal(last.save_now, lambda: (requeued.append(True), (True, "ok"))[1])
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=MAX_STEPS, accumulate_grad_batches=accumulate,
                        limit_val_batches=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[position, requeue, last], default_root_dir=tmp_path)
    trainer.fit(module, datamodule=ResumableData(Data(), position), ckpt_path=resume)
    return module


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_signal_mid_step_checkpoints_at_the_step_boundary_and_resumes_exactly(tmp_path, accumulate):
    straight = fit(tmp_path / "straight", Tiny(), accumulate)

    install_handler(signal.SIGUSR1)
    requeued = []
    preempted = tmp_path / "preempted"
    signal_batch = 2 * accumulate + 1  # the first micro-batch of step 3
    with pytest.raises(Preempted) as stopped:
        fit(preempted, Tiny(signal_at=signal_batch), accumulate, requeued=requeued)
    assert stopped.value.code == 0 and requeued == [True]
    checkpoint = torch.load(preempted / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 3  # the step the signal came in, finished
    assert checkpoint["callbacks"]["DataPosition"]["batches"] == 3 * accumulate  # counted to its last batch

    install_handler(signal.SIGUSR1)  # the requeued job: a new process, the flag cleared
    resumed = fit(preempted, Tiny(), accumulate, resume=preempted / "checkpoints" / "last.ckpt")
    assert resumed.global_step == MAX_STEPS
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def test_lightning_hpc_checkpoints_are_never_resumed_from(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"a step boundary")
    (tmp_path / "hpc_ckpt_1.ckpt").write_bytes(b"newer, maybe mid-step")  # Lightning would resume from it itself
    assert find_resume_checkpoint(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"
    assert not list(tmp_path.glob("hpc_ckpt_*")) and (tmp_path / "hpc_checkpoints" / "hpc_ckpt_1.ckpt").is_file()
    (tmp_path / "checkpoints" / "last.ckpt").unlink()
    assert find_resume_checkpoint(tmp_path) is None
