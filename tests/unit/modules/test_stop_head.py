"""The stop head: scaled gradient into the trunk, and a decision calibrated to the BCE's pos_weight."""

import math

import pytest
import torch
import torch.nn.functional as F

from ttsframe.modules.stop_head import StopHead, scale_gradient


@pytest.mark.parametrize("scale", [0.0, 0.02, 1.0])
def test_the_forward_is_unchanged_and_the_gradient_is_scaled(scale):
    x = torch.randn(3, 4, requires_grad=True)
    y = scale_gradient(x, scale)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, scale))


def test_the_calibrated_probability_undoes_pos_weight():
    """A BCE with pos_weight w on targets of true rate p is minimised at logit = log w + logit(p):
    fit that constant logit and the head's calibrated probability gives p back."""
    p, w = 0.2, 20.0
    targets = (torch.arange(1000) < 200).float()
    logit = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([logit], lr=0.5)
    for _ in range(500):
        loss = F.binary_cross_entropy_with_logits(logit.expand(1000), targets, pos_weight=torch.tensor(w))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head = StopHead(4, hidden=8, pos_weight=w)
    assert float(logit) == pytest.approx(math.log(w) + math.log(p / (1 - p)), abs=1e-2)
    assert float(head.stop_probability(logit.detach())) == pytest.approx(p, abs=1e-2)
    assert float(torch.sigmoid(logit.detach())) > 0.8  # what the uncalibrated rule would have read


def test_a_constant_head_and_its_offset_in_the_state_dict():
    head = StopHead(4, hidden=8, pos_weight=100.0)
    head.set_constant(-50.0)
    assert torch.equal(head(torch.randn(2, 5, 4)), torch.full((2, 5), -50.0))
    assert float(head.state_dict()["logit_offset"]) == pytest.approx(math.log(100.0))
    with pytest.raises(ValueError, match="grad_scale"):
        StopHead(4, grad_scale=2.0)
