"""One attention function for every model: FlashAttention when it can run, SDPA otherwise.

Shapes follow the usual (B, H, T, D) layout. Masks use one convention throughout the
framework: a boolean ``key_padding_mask`` of shape (B, Tk) that is True at real positions
and False at padding. Any other pattern (chunk masks for streaming) is a boolean
``attn_mask`` (Tq, Tk) or (B, Tq, Tk), True where a query may see a key; it is combined
with ``causal`` and the padding, and runs on SDPA.

Causal attention is aligned bottom-right: when q holds fewer steps than k (a KV-cache
decode step), query i sits at key position ``Tk - Tq + i`` and sees keys up to and
including that position. This matches FlashAttention >= 2.1 and makes incremental decoding
a plain call with the cached keys.

Backends:
    * ``flash``: ``flash_attn.flash_attn_varlen_func`` on sequences unpadded with index
      tensors (packed rows, no compute spent on padding), or ``flash_attn_func`` when there
      is no padding. Needs CUDA, fp16/bf16 and a head size that is a multiple of 8 up to 256.
    * ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` with a boolean mask.
    ``auto`` (the default) picks flash when it is importable and the inputs allow it.

Outputs at padded query positions are unspecified (zeros with flash, finite values with
SDPA); callers mask them.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

import torch
import torch.nn.functional as F

_BACKENDS = ("auto", "flash", "sdpa")


@functools.lru_cache(maxsize=1)
def _flash_attn_module() -> ModuleType | None:
    """Imports ``flash_attn`` once, lazily; None when it is not installed."""
    if importlib.util.find_spec("flash_attn") is None:
        return None
    import flash_attn

    return flash_attn


def _flash_can_run(q: torch.Tensor) -> bool:
    head_dim = q.shape[-1]
    return (
        q.is_cuda
        and q.dtype in (torch.float16, torch.bfloat16)
        and head_dim % 8 == 0
        and head_dim <= 256
    )


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    softmax_scale: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Scaled dot-product self-attention, possibly over a KV cache.

    The queries are the last Tq positions of the key sequence (self-attention, with or
    without a cache), so a query's padding flag is ``key_padding_mask[:, -Tq:]``.

    Args:
        q: queries (B, H, Tq, D).
        k: keys (B, H, Tk, D), Tk >= Tq.
        v: values (B, H, Tk, D).
        causal: each query sees only keys at or before its own position (bottom-right).
        key_padding_mask: (B, Tk) bool, True at real keys. None: no padding.
        attn_mask: (Tq, Tk) or (B, Tq, Tk) bool, True where a query may see a key; every
            real query must see at least one key. Not supported by the flash backend.
        dropout_p: attention dropout; pass 0.0 in eval mode.
        softmax_scale: defaults to 1/sqrt(D).
        backend: "auto", "flash" (fails if flash_attn is missing) or "sdpa".

    Returns:
        (B, H, Tq, D), in the dtype of q.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; valid: {', '.join(_BACKENDS)}")
    if k.shape[2] < q.shape[2]:
        raise ValueError(f"more queries ({q.shape[2]}) than keys ({k.shape[2]})")
    if backend == "flash" and attn_mask is not None:
        raise ValueError("backend='flash' takes no attn_mask; use backend='sdpa' or 'auto'")
    flash = _flash_attn_module()
    if backend == "flash" and flash is None:
        raise ImportError("backend='flash' needs the flash_attn package (pip install ttsframe[flash])")
    use_flash = backend == "flash" or (backend == "auto" and attn_mask is None and _flash_can_run(q))
    if flash is not None and use_flash:
        return _flash_attention(flash, q, k, v, causal, key_padding_mask, dropout_p, softmax_scale)
    return _sdpa_attention(q, k, v, causal, key_padding_mask, attn_mask, dropout_p, softmax_scale)


def _sdpa_attention(q, k, v, causal, key_padding_mask, attn_mask, dropout_p, softmax_scale) -> torch.Tensor:
    q_len, k_len = q.shape[2], k.shape[2]
    sdpa = functools.partial(F.scaled_dot_product_attention, dropout_p=dropout_p, scale=softmax_scale)
    if key_padding_mask is None and attn_mask is None:
        if not (causal and q_len > 1):  # one query at the end sees every key anyway
            return sdpa(q, k, v)
        if q_len == k_len:
            return sdpa(q, k, v, is_causal=True)
    return sdpa(q, k, v, attn_mask=_boolean_mask(q_len, k_len, q.device, causal, key_padding_mask, attn_mask))


def attention_with_probabilities(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`attention` written out (softmax of the scores), for losses on where the heads look.

    Same arguments and masks as `attention` (SDPA's convention). Returns (B, H, Tq, D) outputs and
    (B, H, Tq, Tk) attention probabilities, before dropout (zero where a query may not look).
    """
    q_len, k_len = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, H, Tq, Tk)
    scores = scores.float()
    if causal or key_padding_mask is not None or attn_mask is not None:
        mask = _boolean_mask(q_len, k_len, q.device, causal, key_padding_mask, attn_mask)
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = scores.softmax(dim=-1)  # (B, H, Tq, Tk)
    weights = F.dropout(probs, dropout_p) if dropout_p > 0 else probs
    return weights.to(v.dtype) @ v, probs


def _boolean_mask(q_len, k_len, device, causal, key_padding_mask, attn_mask) -> torch.Tensor:
    """(Tq, Tk), (B, Tq, Tk)-broadcast (B, 1, Tq, Tk) bool: True where a query may see a key."""
    mask = torch.ones(q_len, k_len, dtype=torch.bool, device=device)  # (Tq, Tk)
    if causal and q_len > 1:
        mask = mask.tril(diagonal=k_len - q_len)
    if attn_mask is not None:
        mask = mask & (attn_mask if attn_mask.dim() == 2 else attn_mask[:, None])  # (Tq, Tk) or (B, 1, Tq, Tk)
    if key_padding_mask is not None:
        mask = mask & key_padding_mask[:, None, None, :]  # (B, 1, Tq, Tk)
        # A padded query may see no key at all (left padding under a causal mask), which
        # makes softmax return NaN. Letting every padded query see its own key keeps it
        # finite; real queries keep exactly the keys they were given.
        padded_query = ~key_padding_mask[:, k_len - q_len :, None]  # (B, Tq, 1)
        mask = mask | (_shifted_eye(q_len, k_len, device) & padded_query)[:, None]
    return mask


def _shifted_eye(q_len: int, k_len: int, device: torch.device) -> torch.Tensor:
    """(Tq, Tk) bool, True where key position == Tk - Tq + query index."""
    rows = torch.arange(q_len, device=device)[:, None]
    cols = torch.arange(k_len, device=device)[None, :]
    return cols == rows + (k_len - q_len)


def _unpad_indices(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """From a (B, T) validity mask: flat indices of real items, cu_seqlens (B+1,), max length."""
    lengths = mask.sum(dim=1, dtype=torch.int32)  # (B,)
    indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()  # (N,)
    cu_seqlens = F.pad(torch.cumsum(lengths, dim=0, dtype=torch.int32), (1, 0))  # (B+1,)
    return indices, cu_seqlens, int(lengths.max())


def _flash_attention(flash, q, k, v, causal, key_padding_mask, dropout_p, softmax_scale) -> torch.Tensor:
    batch, n_heads, q_len, head_dim = q.shape
    k_len = k.shape[2]
    # flash_attn wants (B, T, H, D) / packed (N, H, D).
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    if key_padding_mask is None:
        out = flash.flash_attn_func(q, k, v, dropout_p=dropout_p, softmax_scale=softmax_scale, causal=causal)
        return out.transpose(1, 2)  # (B, H, Tq, D)

    query_mask = key_padding_mask[:, k_len - q_len :]  # (B, Tq)
    q_index, cu_seqlens_q, max_q = _unpad_indices(query_mask)
    k_index, cu_seqlens_k, max_k = _unpad_indices(key_padding_mask)
    q_packed = q.reshape(batch * q_len, n_heads, head_dim).index_select(0, q_index)  # (Nq, H, D)
    k_packed = k.reshape(batch * k_len, n_heads, head_dim).index_select(0, k_index)  # (Nk, H, D)
    v_packed = v.reshape(batch * k_len, n_heads, head_dim).index_select(0, k_index)  # (Nk, H, D)
    out_packed = flash.flash_attn_varlen_func(
        q_packed,
        k_packed,
        v_packed,
        cu_seqlens_q,
        cu_seqlens_k,
        max_q,
        max_k,
        dropout_p=dropout_p,
        softmax_scale=softmax_scale,
        causal=causal,
    )  # (Nq, H, D)
    out = out_packed.new_zeros(batch * q_len, n_heads, head_dim).index_copy(0, q_index, out_packed)
    return out.view(batch, q_len, n_heads, head_dim).transpose(1, 2)  # (B, H, Tq, D)
