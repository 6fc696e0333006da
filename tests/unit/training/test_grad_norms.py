"""Per-loss-term gradient norms on a shared layer (`ttsframe.training.grad_norms`)."""

import math

import pytest
import torch
from torch import nn

from ttsframe.modules.transformer import Transformer, TransformerConfig
from ttsframe.training.grad_norms import last_layer, term_gradient_norms


def test_each_term_gets_the_norm_of_its_own_gradient_and_the_graph_survives():
    torch.manual_seed(0)
    trunk, head_a, head_b = nn.Linear(4, 4), nn.Linear(4, 1), nn.Linear(4, 1)
    hidden = trunk(torch.randn(8, 4))
    a, b = head_a(hidden).pow(2).mean(), 10 * head_b(hidden).mean()
    norms = term_gradient_norms({"a": a, "b": b, "constant": torch.tensor(1.0)}, trunk.parameters())
    expected = torch.autograd.grad(b, list(trunk.parameters()), retain_graph=True)
    assert norms["b"] == pytest.approx(math.sqrt(sum(float(g.pow(2).sum()) for g in expected)), rel=1e-5)
    assert norms["a"] > 0 and norms["constant"] == 0.0
    (a + b).backward()  # the terms' graph is still there for the real backward
    assert trunk.weight.grad is not None


def test_last_layer_of_our_transformer_and_of_a_transformers_backbone():
    ours = Transformer(TransformerConfig(d_model=8, n_heads=2, n_layers=3, ffn_dim=16))
    assert last_layer(ours) is ours.blocks[-1]
    backbone = nn.Module()
    backbone.model = nn.Module()
    backbone.model.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert last_layer(backbone) is backbone.model.layers[-1]
    with pytest.raises(ValueError, match="no `blocks` or `layers`"):
        last_layer(nn.Linear(2, 2))
