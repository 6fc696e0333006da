"""MELLE memorises a fixed tiny batch within a few dozen steps, stop decisions included."""

import dataclasses

import pytest
import torch

from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel
from ttsframe.models.melle.loss import MelleLossConfig, melle_loss
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import melle_tiny

VOCAB, M = 10, 16


def fixed_batch():
    """Two smooth, distinct log-mel trajectories of 14 and 9 frames."""
    t = torch.arange(14.0)[:, None]
    bins = torch.arange(M)
    first = 2 * torch.sin(t * (0.3 + 0.05 * bins)) - 4
    second = torch.cos(0.2 * t + bins) - 3
    mel = torch.stack([first, second])  # (2, 14, M)
    tokens = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]])
    return tokens, torch.tensor([5, 3]), mel, torch.tensor([14, 9])


@pytest.mark.parametrize("r", [1, 2])
def test_overfits_a_fixed_batch_and_learns_to_stop(r):
    torch.manual_seed(0)
    net = Melle(dataclasses.replace(melle_tiny(VOCAB, n_mels=M), reduction_factor=r, prenet_dropout=0.0))
    net.stop_head.set_pos_weight(MelleLossConfig().stop_pos_weight)  # what MelleTask does: the loss's weight
    tokens, token_lengths, mel, frame_lengths = fixed_batch()
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    history = []
    for _ in range(150):
        metrics = melle_loss(net(tokens, token_lengths, mel, frame_lengths, generator=generator))
        optimizer.zero_grad()
        metrics["loss"].backward()
        optimizer.step()
        history.append({k: v.item() for k, v in metrics.items()})
    first, last = history[0], history[-1]
    assert last["loss"] < 0.1 * first["loss"], (first, last)
    assert last["reg"] < 0.5 * first["reg"] and last["stop_accuracy"] == 1.0, (first, last)

    options = MelleSamplingOptions(temperature=0.0, max_frames_per_token=8)
    out = generate_mel(net, tokens, token_lengths, mel[:, :0], torch.zeros(2, dtype=torch.long), options)
    expected = [-(-n // r) * r for n in (14, 9)]  # whole groups
    assert all(abs(len(x) - n) <= r for x, n in zip(out, expected)), [len(x) for x in out]
