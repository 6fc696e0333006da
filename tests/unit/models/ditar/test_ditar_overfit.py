"""DiTAR (tiny) learns a fixed batch: the diffusion loss falls and the stop decisions become right."""

import torch

from ttsframe.models.ditar.loss import ditar_loss
from ttsframe.models.ditar.model import DiTAR
from ttsframe.models.ditar.presets import ditar_tiny

VOCAB, M = 10, 16


def fixed_batch():
    """Two smooth, distinct log-mel trajectories of 16 and 10 frames."""
    t = torch.arange(16.0)[:, None]
    bins = torch.arange(M)
    first = 2 * torch.sin(t * (0.3 + 0.05 * bins)) - 4
    second = torch.cos(0.2 * t + bins) - 3
    mel = torch.stack([first, second])  # (2, 16, M)
    tokens = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]])
    return tokens, torch.tensor([5, 3]), mel, torch.tensor([16, 10])


def held_out_loss(net, batch):
    """The loss on one fixed draw of times and noise, eval mode."""
    net.eval()
    with torch.no_grad():
        metrics = ditar_loss(net(*batch, generator=torch.Generator().manual_seed(123)))
    net.train()
    return metrics


def test_diffusion_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    net = DiTAR(ditar_tiny(VOCAB, n_mels=M))
    batch = fixed_batch()
    before = held_out_loss(net, batch)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(80):
        metrics = ditar_loss(net(*batch, generator=generator))
        optimizer.zero_grad()
        metrics["loss"].backward()
        optimizer.step()
    after = held_out_loss(net, batch)
    assert after["diffusion"] < 0.3 * before["diffusion"], (before, after)
    assert after["stop"] < 0.5 * before["stop"] and after["stop_accuracy"] == 1.0, (before, after)
