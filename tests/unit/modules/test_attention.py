"""attention(): SDPA path against a reference, padding, KV-cache offsets, and the
FlashAttention unpad/pad arithmetic checked on CPU through a stand-in flash_attn module."""

import math
from types import SimpleNamespace

import pytest
import torch

from ttsframe.modules import attention as attention_module
from ttsframe.modules.attention import attention


def reference_attention(q, k, v, causal, key_padding_mask=None, attn_mask=None):
    """Plain softmax attention, bottom-right causal, in float64."""
    q, k, v = q.double(), k.double(), v.double()
    q_len, k_len = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    allowed = torch.ones(q_len, k_len, dtype=torch.bool)
    if causal:
        allowed = allowed.tril(diagonal=k_len - q_len)
    if attn_mask is not None:
        allowed = allowed & (attn_mask if attn_mask.dim() == 2 else attn_mask[:, None])
    if key_padding_mask is not None:
        allowed = allowed & key_padding_mask[:, None, None, :]
    scores = scores.masked_fill(~allowed, -math.inf)
    return (scores.softmax(dim=-1) @ v).float()


def random_qkv(batch=2, heads=2, q_len=5, k_len=5, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, q_len, dim, generator=generator)
    k = torch.randn(batch, heads, k_len, dim, generator=generator)
    v = torch.randn(batch, heads, k_len, dim, generator=generator)
    return q, k, v


@pytest.mark.parametrize("causal", [True, False])
def test_sdpa_matches_reference_without_padding(causal):
    q, k, v = random_qkv()
    torch.testing.assert_close(attention(q, k, v, causal=causal), reference_attention(q, k, v, causal))


@pytest.mark.parametrize("causal", [True, False])
def test_right_padding_matches_reference_on_real_queries(causal):
    q, k, v = random_qkv(k_len=6, q_len=6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    out = attention(q, k, v, causal=causal, key_padding_mask=mask)
    expected = reference_attention(q, k, v, causal, mask)
    torch.testing.assert_close(out[0], expected[0])
    torch.testing.assert_close(out[1, :, :3], expected[1, :, :3])


def test_left_padding_under_causal_mask_stays_finite():
    q, k, v = random_qkv(k_len=6, q_len=6)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    out = attention(q, k, v, causal=True, key_padding_mask=mask)
    assert torch.isfinite(out).all()
    # the real part of row 0 equals the same row without its padding
    alone = attention(q[:1, :, 3:], k[:1, :, 3:], v[:1, :, 3:], causal=True)
    torch.testing.assert_close(out[:1, :, 3:], alone)


@pytest.mark.parametrize("q_len", [1, 3])
def test_decode_step_sees_cached_keys_with_bottom_right_offset(q_len):
    q_full, k, v = random_qkv(q_len=7, k_len=7)
    full = attention(q_full, k, v, causal=True)
    step = attention(q_full[:, :, -q_len:], k, v, causal=True)
    torch.testing.assert_close(step, full[:, :, -q_len:])


@pytest.mark.parametrize("per_row", [False, True])
def test_attn_mask_combines_with_padding_and_causal(per_row):
    q, k, v = random_qkv(q_len=6, k_len=6)
    chunk = torch.arange(6) // 2
    allowed = chunk[None, :] <= chunk[:, None]  # (T, T) chunk mask, chunks of 2
    attn_mask = torch.stack([allowed, allowed.tril()]) if per_row else allowed
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    for causal in (False, True):
        out = attention(q, k, v, causal=causal, key_padding_mask=mask, attn_mask=attn_mask)
        expected = reference_attention(q, k, v, causal, mask, attn_mask)
        torch.testing.assert_close(out[0], expected[0])
        torch.testing.assert_close(out[1, :, :4], expected[1, :, :4])
        assert torch.isfinite(out).all()
    torch.testing.assert_close(attention(q, k, v, causal=False, attn_mask=attn_mask),
                               reference_attention(q, k, v, False, None, attn_mask))


def test_rejects_unknown_backend_and_missing_flash(monkeypatch):
    q, k, v = random_qkv()
    with pytest.raises(ValueError, match="valid: auto, flash, sdpa"):
        attention(q, k, v, causal=True, backend="xformers")
    with pytest.raises(ValueError, match="attn_mask"):
        attention(q, k, v, causal=False, attn_mask=torch.ones(5, 5, dtype=torch.bool), backend="flash")
    monkeypatch.setattr(attention_module, "_flash_attn_module", lambda: None)
    with pytest.raises(ImportError, match="flash_attn"):
        attention(q, k, v, causal=True, backend="flash")


def _fake_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *, dropout_p, softmax_scale, causal):
    """flash_attn_varlen_func semantics (packed (N, H, D), bottom-right causal) in plain torch."""
    assert q.dim() == 3 and cu_seqlens_q.dtype == torch.int32
    outputs = []
    for b in range(len(cu_seqlens_q) - 1):
        qs = q[cu_seqlens_q[b] : cu_seqlens_q[b + 1]].transpose(0, 1)[None]  # (1, H, lq, D)
        ks = k[cu_seqlens_k[b] : cu_seqlens_k[b + 1]].transpose(0, 1)[None]
        vs = v[cu_seqlens_k[b] : cu_seqlens_k[b + 1]].transpose(0, 1)[None]
        assert qs.shape[2] <= max_seqlen_q and ks.shape[2] <= max_seqlen_k
        outputs.append(reference_attention(qs, ks, vs, causal)[0].transpose(0, 1))
    return torch.cat(outputs)


def _fake_dense(q, k, v, dropout_p, softmax_scale, causal):
    return reference_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal).transpose(1, 2)


@pytest.fixture
def fake_flash(monkeypatch):
    fake = SimpleNamespace(flash_attn_varlen_func=_fake_varlen, flash_attn_func=_fake_dense)
    monkeypatch.setattr(attention_module, "_flash_attn_module", lambda: fake)


@pytest.mark.parametrize("causal", [True, False])
def test_flash_path_unpads_and_repads_like_sdpa(fake_flash, causal):
    q, k, v = random_qkv(batch=3, q_len=6, k_len=6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    flash = attention(q, k, v, causal=causal, key_padding_mask=mask, backend="flash")
    sdpa = attention(q, k, v, causal=causal, key_padding_mask=mask, backend="sdpa")
    query_mask = mask[:, None, :, None].expand_as(flash)
    torch.testing.assert_close(flash[query_mask], sdpa[query_mask])
    assert (flash[~query_mask] == 0).all()


def test_flash_path_decode_step_and_no_padding(fake_flash):
    q, k, v = random_qkv(batch=2, q_len=2, k_len=6)
    mask = torch.tensor([[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    flash = attention(q, k, v, causal=True, key_padding_mask=mask, backend="flash")
    torch.testing.assert_close(flash, attention(q, k, v, causal=True, key_padding_mask=mask, backend="sdpa"))
    dense = attention(q, k, v, causal=True, backend="flash")
    torch.testing.assert_close(dense, attention(q, k, v, causal=True, backend="sdpa"))


def test_auto_backend_keeps_sdpa_on_cpu(fake_flash, monkeypatch):
    called = []
    monkeypatch.setattr(attention_module, "_flash_attention", lambda *args: called.append(1))
    q, k, v = random_qkv()
    attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=True)
    assert not called
