"""Pre-norm transformer backbone: hidden states in, hidden states out.

No embeddings, heads or losses live here (the model families own those). Positions enter
through rotary embeddings with explicit position ids; padding through a (B, T) boolean
mask (True at real positions); any other attention pattern (a chunk mask) through a boolean
``attn_mask``; incremental decoding through a `KVCache`. With
``cond_dim`` set, every layer norm becomes an adaptive layer norm whose scale and shift
come from a per-row conditioning vector (VALL-E's NAR uses it for the codebook stage).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.modules.attention import attention, attention_with_probabilities
from ttsframe.modules.kv_cache import KVCache, LayerKVCache
from ttsframe.modules.rope import RotaryEmbedding, apply_rotary

_ACTIVATIONS = ("gelu", "swiglu")


@dataclass
class TransformerConfig:
    d_model: int
    n_heads: int
    n_layers: int
    ffn_dim: int
    dropout: float = 0.0
    causal: bool = True
    activation: str = "gelu"  # "gelu" or "swiglu"
    cond_dim: int | None = None  # set: adaptive layer norm conditioned on a (B, cond_dim) vector
    bias: bool = True
    rope_base: float = 10_000.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; valid: {', '.join(_ACTIVATIONS)}")


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are predicted from a conditioning vector.

    The projection starts at zero, so at initialisation this is a plain LayerNorm.
    """

    def __init__(self, d_model: int, cond_dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps, elementwise_affine=False)
        self.to_scale_shift = nn.Linear(cond_dim, 2 * d_model)
        nn.init.zeros_(self.to_scale_shift.weight)
        nn.init.zeros_(self.to_scale_shift.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); cond: (B, cond_dim). Returns (B, T, D)."""
        scale, shift = self.to_scale_shift(cond)[:, None].chunk(2, dim=-1)  # (B, 1, D) each
        return self.norm(x) * (1 + scale) + shift


class Norm(nn.Module):
    """LayerNorm, adaptive when ``cond_dim`` is given; one call signature for both."""

    def __init__(self, d_model: int, cond_dim: int | None, eps: float):
        super().__init__()
        self.adaptive = cond_dim is not None
        self.norm = AdaptiveLayerNorm(d_model, cond_dim, eps) if self.adaptive else nn.LayerNorm(d_model, eps=eps)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.adaptive:
            if cond is None:
                raise ValueError("this transformer uses adaptive layer norm: pass cond (B, cond_dim)")
            return self.norm(x, cond)
        return self.norm(x)


class SelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.causal = config.causal
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.out = nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        key_padding_mask: torch.Tensor | None,
        layer_cache: LayerKVCache | None,
        attn_mask: torch.Tensor | None = None,
        with_probabilities: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, D) -> (B, T, D) and, when ``with_probabilities``, the (B, H, T, T_keys) attention."""
        batch, length, d_model = x.shape
        head_dim = d_model // self.n_heads
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, hd) each
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        if layer_cache is not None:
            k, v = layer_cache.update(k, v)  # (B, H, T_cached, hd)
        masks = dict(causal=self.causal, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                     dropout_p=self.dropout if self.training else 0.0)
        probabilities = None
        if with_probabilities:
            y, probabilities = attention_with_probabilities(q, k, v, **masks)  # (B, H, T, hd), (B, H, T, Tk)
        else:
            y = attention(q, k, v, **masks)  # (B, H, T, hd)
        return self.out(y.transpose(1, 2).reshape(batch, length, d_model)), probabilities


class FeedForward(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.swiglu = config.activation == "swiglu"
        hidden = 2 * config.ffn_dim if self.swiglu else config.ffn_dim  # SwiGLU: gate and value
        self.up = nn.Linear(config.d_model, hidden, bias=config.bias)
        self.down = nn.Linear(config.ffn_dim, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)  # (B, T, hidden)
        if self.swiglu:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value  # (B, T, ffn_dim)
        else:
            h = F.gelu(h)
        return self.down(h)


class TransformerBlock(nn.Module):
    """x + attn(norm(x)), then x + ffn(norm(x)), with dropout on each branch."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.attn_norm = Norm(config.d_model, config.cond_dim, config.norm_eps)
        self.attn = SelfAttention(config)
        self.ffn_norm = Norm(config.d_model, config.cond_dim, config.norm_eps)
        self.ffn = FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, rotary, key_padding_mask, cond=None, layer_cache=None, attn_mask=None,
                with_probabilities: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, D) -> (B, T, D), and the attention probabilities when asked (else None)."""
        y, probabilities = self.attn(self.attn_norm(x, cond), rotary, key_padding_mask, layer_cache, attn_mask,
                                     with_probabilities)
        x = x + self.dropout(y)
        x = x + self.dropout(self.ffn(self.ffn_norm(x, cond)))
        return x, probabilities


class Transformer(nn.Module):
    """A stack of pre-norm blocks and a final norm.

    Args:
        config: sizes and options; ``config.causal`` selects decoder or encoder attention.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.rotary = RotaryEmbedding(config.d_model // config.n_heads, config.rope_base)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.final_norm = Norm(config.d_model, config.cond_dim, config.norm_eps)

    def new_cache(self, max_length: int | None = None) -> KVCache:
        """An empty cache sized for this stack (``max_length`` None: growing)."""
        return KVCache(self.config.n_layers, max_length)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Runs the stack over new positions (all of them, or the next ones with a cache).

        Args:
            x: (B, T, D) input embeddings.
            positions: (B, T) rotary position ids.
            padding_mask: (B, T) bool, True at real positions; None: no padding.
            cond: (B, cond_dim) for adaptive layer norm; only with ``config.cond_dim``.
            cache: appended to in place; the new positions attend to everything cached.
            attn_mask: (T, T_keys) or (B, T, T_keys) bool, True where a position may attend;
                combined with ``config.causal`` and the padding (e.g. a chunk mask).

        Returns:
            (B, T, D) hidden states after the final norm.
        """
        return self.forward_with_attention(x, positions, padding_mask, cond, cache, attn_mask)[0]

    def forward_with_attention(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        cache: KVCache | None = None,
        attn_mask: torch.Tensor | None = None,
        layers: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`forward`, also returning the attention probabilities (B, H, T, T_keys) of the given layers
        (in that order; written-out attention there, e.g. for an alignment loss)."""
        for layer in layers:
            if not 0 <= layer < len(self.blocks):
                raise ValueError(f"attention of layer {layer} asked, but the stack has {len(self.blocks)} layers")
        if cache is not None:
            if padding_mask is None:
                padding_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            key_padding_mask = cache.extend_padding_mask(padding_mask)  # (B, T_cached)
        else:
            key_padding_mask = padding_mask
        rotary = self.rotary(positions)
        probabilities = {}
        for index, block in enumerate(self.blocks):
            layer_cache = None if cache is None else cache.layers[index]
            x, probabilities[index] = block(x, rotary, key_padding_mask, cond, layer_cache, attn_mask, index in layers)
        return self.final_norm(x, cond), [probabilities[layer] for layer in layers]
