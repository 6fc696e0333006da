"""Transformer backbone: KV-cache decoding equals a full pass, padding is neutral, rotary
positions are relative, adaptive layer norm starts as plain layer norm."""

import pytest
import torch

from ttsframe.modules.kv_cache import KVCache
from ttsframe.modules.rope import RotaryEmbedding, apply_rotary
from ttsframe.modules.transformer import Transformer, TransformerConfig


def tiny(**overrides) -> Transformer:
    torch.manual_seed(0)
    config = dict(d_model=32, n_heads=4, n_layers=2, ffn_dim=64, causal=True)
    config.update(overrides)
    return Transformer(TransformerConfig(**config)).eval()


def positions_for(batch, length):
    return torch.arange(length)[None].expand(batch, length)


@pytest.mark.parametrize("max_length", [None, 12])
@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_cached_steps_equal_full_pass(max_length, activation):
    model = tiny(activation=activation)
    x = torch.randn(2, 9, 32)
    full = model(x, positions_for(2, 9))
    cache = model.new_cache(max_length)
    outputs = [model(x[:, :4], positions_for(2, 4), cache=cache)]  # a prefill of 4 ...
    for t in range(4, 9):  # ... then one position at a time
        outputs.append(model(x[:, t : t + 1], torch.full((2, 1), t), cache=cache))
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 9 and all(layer.length == 9 for layer in cache.layers)


def test_preallocated_cache_overflow_is_an_error():
    model = tiny()
    cache = model.new_cache(max_length=3)
    with pytest.raises(ValueError, match="overflow"):
        model(torch.randn(1, 4, 32), positions_for(1, 4), cache=cache)


def test_kv_cache_grows_per_batch_row():
    cache = KVCache(n_layers=1)
    keys = torch.randn(3, 2, 4, 8)
    out_k, _ = cache.layers[0].update(keys, keys)
    out_k, _ = cache.layers[0].update(keys[:, :, :1], keys[:, :, :1])
    assert out_k.shape == (3, 2, 5, 8)
    mask = cache.extend_padding_mask(torch.ones(3, 4, dtype=torch.bool))
    assert mask.shape == (3, 4) and cache.length == 4


@pytest.mark.parametrize("causal", [True, False])
def test_padding_does_not_change_other_positions(causal):
    model = tiny(causal=causal)
    x = torch.randn(2, 7, 32)
    lengths = torch.tensor([7, 4])
    mask = torch.arange(7)[None] < lengths[:, None]
    batched = model(x, positions_for(2, 7), mask)
    alone = model(x[1:, :4], positions_for(1, 4))
    torch.testing.assert_close(batched[1:, :4], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[:1], model(x[:1], positions_for(1, 7)), atol=1e-5, rtol=1e-5)


def test_rotary_scores_depend_on_relative_position_only():
    rotary = RotaryEmbedding(head_dim=8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pos_q, pos_k):
        rq = apply_rotary(q, *rotary(torch.tensor([[pos_q]])))
        rk = apply_rotary(k, *rotary(torch.tensor([[pos_k]])))
        return (rq * rk).sum()

    torch.testing.assert_close(score(5, 2), score(13, 10))
    assert not torch.allclose(score(5, 2), score(5, 4))


def test_adaptive_layer_norm_is_plain_at_init_and_follows_cond():
    model = tiny(cond_dim=16, causal=False)
    x = torch.randn(2, 5, 32)
    cond_a, cond_b = torch.randn(2, 16), torch.randn(2, 16)
    positions = positions_for(2, 5)
    torch.testing.assert_close(model(x, positions, cond=cond_a), model(x, positions, cond=cond_b))
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "to_scale_shift"):
                module.to_scale_shift.weight.normal_()
    assert not torch.allclose(model(x, positions, cond=cond_a), model(x, positions, cond=cond_b))
    with pytest.raises(ValueError, match="pass cond"):
        model(x, positions)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TransformerConfig(d_model=30, n_heads=4, n_layers=1, ffn_dim=8)
    with pytest.raises(ValueError, match="valid: gelu, swiglu"):
        TransformerConfig(d_model=32, n_heads=4, n_layers=1, ffn_dim=8, activation="relu")
