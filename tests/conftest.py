"""Shared test settings: deterministic, offline, quiet, one torch thread.

`TTSFRAME_TEST_THREADS=2 make test` runs every test on 2 torch threads instead: the bit-exact
tests (resume, DDP, preemption, streaming = offline) must hold on any count, as long as the runs
they compare use the same one.
"""

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


TEST_THREADS = int(os.environ.get("TTSFRAME_TEST_THREADS", "1"))


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models run fastest on one thread; on a shared 2-core machine more threads only spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(threads)
