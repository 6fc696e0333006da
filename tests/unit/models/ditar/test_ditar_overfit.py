"""DiTAR (tiny) learns a fixed batch: the diffusion loss falls, the stop decisions become right,
and guided heads find the diagonal."""

import dataclasses

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


def trained(net, batch, steps=200):
    """The held-out loss terms before and after `steps` Adam steps on the batch."""
    before = held_out_loss(net, batch)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        metrics = ditar_loss(net(*batch, generator=generator))
        optimizer.zero_grad()
        metrics["loss"].backward()
        optimizer.step()
    return before, held_out_loss(net, batch)


def test_diffusion_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    net = DiTAR(ditar_tiny(VOCAB, n_mels=M))
    batch = fixed_batch()
    before, after = trained(net, batch)
    assert after["diffusion"] < 0.3 * before["diffusion"], (before, after)
    assert after["stop"] < 0.5 * before["stop"] and after["stop_accuracy"] == 1.0, (before, after)


def test_guided_heads_learn_the_diagonal_on_a_fixed_batch():
    torch.manual_seed(0)
    net = DiTAR(dataclasses.replace(ditar_tiny(VOCAB, n_mels=M), alignment_heads=1, alignment_layer=0))
    batch = fixed_batch()
    before, after = trained(net, batch)
    assert after["alignment"] < 0.5 * before["alignment"], (before, after)


def test_regression_prior_learns_the_patches_on_a_fixed_batch():
    torch.manual_seed(0)
    net = DiTAR(dataclasses.replace(ditar_tiny(VOCAB, n_mels=M), regression_prior=True))
    batch = fixed_batch()
    before, after = trained(net, batch)
    assert after["prior"] < 0.2 * before["prior"], (before, after)
    assert after["diffusion"] < 0.5 * before["diffusion"], (before, after)
