"""Both VALL-E models memorise a fixed tiny batch within a few dozen AdamW steps."""

import torch

from ttsframe.models.valle.loss import codebook_loss
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.models.valle.presets import valle_tiny

VOCAB, K, N = 12, 3, 16


def fixed_batch():
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, VOCAB, (2, 5), generator=generator)
    codes = torch.randint(0, N, (2, K, 12), generator=generator)
    return tokens, torch.tensor([5, 3]), codes, torch.tensor([12, 9])


def train(model, loss_fn, steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_ar_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = ValleAR(valle_tiny(VOCAB, K, N))
    data = fixed_batch()
    losses = train(model, lambda: codebook_loss(model(*data))["loss"], steps=40)
    assert losses[-1] < 0.3 * losses[0], losses
    assert codebook_loss(model(*data))["accuracy_top1"] > 0.9


def test_nar_overfits_a_fixed_batch_with_sampled_plans():
    torch.manual_seed(0)
    model = ValleNAR(valle_tiny(VOCAB, K, N))
    data = fixed_batch()
    generator = torch.Generator().manual_seed(0)
    eval_plan = dict(prompt_lengths=torch.tensor([4, 3]), stages=torch.tensor([1, 2]))
    initial = codebook_loss(model(*data, **eval_plan))["loss"].item()
    train(model, lambda: codebook_loss(model(*data, generator=generator))["loss"], steps=60)
    final = codebook_loss(model(*data, **eval_plan))["loss"].item()
    assert final < 0.3 * initial, (initial, final)
