"""CosyVoice 2's token encoder: a Conformer (without convolution modules) that upsamples x2 midway.

    tokens (B, L, D) -> Linear + LayerNorm, x sqrt(D) -> look-ahead convs (sees 3 tokens ahead)
      -> n layers at the token rate -> repeat x2 + causal conv -> Linear + LayerNorm, x sqrt(D)
      -> n_up layers at the mel rate -> LayerNorm -> (B, 2L, D)

Its layers are pre-norm: x + self-attention(LN(x)), then x + FFN(LN(x)) with SiLU. The attention
uses Transformer-XL relative positions (ESPnet's "new" encoding): the score of query i and key j is
(q_i + u) . k_j + (q_i + v) . P(i - j), P a linear map of sinusoids of the signed distance i - j.
With ``streaming`` the attention sees only its own chunk and the chunks before it (chunks of
``chunk_tokens`` tokens, 2x that after the upsampling), so the encoder can run chunk by chunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.models.cosyvoice.flow_masks import attention_mask


def relative_sinusoids(length: int, dim: int, device=None) -> torch.Tensor:
    """(2 L - 1, dim) sinusoids of the distances L-1, L-2, ..., -(L-1), sin and cos interleaved."""
    distance = torch.arange(length - 1, -length, -1, device=device, dtype=torch.float32)[:, None]  # (2L-1, 1)
    freqs = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(2 * length - 1, dim, device=device)
    table[:, 0::2] = torch.sin(distance * freqs)
    table[:, 1::2] = torch.cos(distance * freqs)
    return table


class RelPositionAttention(nn.Module):
    """Multi-head self-attention with relative positions: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = n_heads, dim // n_heads, dropout
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(n_heads, self.head_dim))  # content bias
        self.pos_bias_v = nn.Parameter(torch.zeros(n_heads, self.head_dim))  # position bias

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, H, d)
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.head_dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D); positions (2T - 1, D) from `relative_sinusoids`; mask (B, T, T) bool, True: may attend."""
        length = x.shape[1]
        q = self._heads(self.q(x))  # (B, T, H, d)
        k, v = self._heads(self.k(x)).transpose(1, 2), self._heads(self.v(x)).transpose(1, 2)  # (B, H, T, d)
        p = self.pos(positions).view(-1, self.n_heads, self.head_dim).transpose(0, 1)  # (H, 2T-1, d)
        by_distance = (q + self.pos_bias_v).transpose(1, 2) @ p.transpose(1, 2)  # (B, H, T, 2T-1)
        # query i, key j: distance i - j sits at column (T - 1) - i + j
        index = (length - 1 - torch.arange(length, device=x.device)[:, None]
                 + torch.arange(length, device=x.device)[None, :])  # (T, T)
        bias = by_distance.gather(3, index.expand(*by_distance.shape[:2], length, length)) / math.sqrt(self.head_dim)
        bias = bias.masked_fill(~mask[:, None], float("-inf"))
        q_u = (q + self.pos_bias_u).transpose(1, 2)  # (B, H, T, d)
        h = F.scaled_dot_product_attention(q_u, k, v, attn_mask=bias,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, d)
        return self.out(h.transpose(1, 2).reshape(x.shape))


class ConformerLayer(nn.Module):
    """Pre-norm: x + attention(LN(x)); x + FFN(LN(x)). (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, n_heads: int, ffn_dim: int, dropout: float = 0.0):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim, eps=1e-12)
        self.attn = RelPositionAttention(dim, n_heads, dropout)
        self.ff_norm = nn.LayerNorm(dim, eps=1e-12)
        self.ff = nn.Sequential(nn.Linear(dim, ffn_dim), nn.SiLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), positions, mask))
        return x + self.dropout(self.ff(self.ff_norm(x)))


class LookAhead(nn.Module):
    """x + conv2(lrelu(conv1(x))): conv1 reads `ahead` future tokens, conv2 (kernel 3) two past ones."""

    def __init__(self, dim: int, ahead: int):
        super().__init__()
        self.ahead = ahead
        self.conv1 = nn.Conv1d(dim, dim, ahead + 1)
        self.conv2 = nn.Conv1d(dim, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D), zeros at padding
        h = F.pad(x.transpose(1, 2), (0, self.ahead))  # (B, D, T + ahead)
        h = F.pad(F.leaky_relu(self.conv1(h)), (2, 0))
        return x + self.conv2(h).transpose(1, 2)


class UpsampleConformerEncoder(nn.Module):
    """tokens (B, L, D) embedded, lengths (B,) -> (B, ratio * L, D), lengths * ratio.

    Args:
        dim: width D (the token embedding's size too).
        n_heads, ffn_dim, n_layers, n_up_layers: layers before and after the upsampling.
        ratio: mel frames per token (2 for 25 Hz tokens and 50 Hz mel).
        ahead: tokens of look-ahead.
        chunk_tokens: the streaming chunk, in tokens.
    """

    def __init__(self, dim: int, n_heads: int, ffn_dim: int, n_layers: int, n_up_layers: int, ratio: int = 2,
                 ahead: int = 3, chunk_tokens: int = 25, dropout: float = 0.0):
        super().__init__()
        self.dim, self.ratio, self.chunk_tokens = dim, ratio, chunk_tokens
        self.in_proj, self.in_norm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=1e-5)
        self.lookahead = LookAhead(dim, ahead)
        self.layers = nn.ModuleList(ConformerLayer(dim, n_heads, ffn_dim, dropout) for _ in range(n_layers))
        self.upsample = nn.Conv1d(dim, dim, 2 * ratio + 1)
        self.up_proj, self.up_norm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=1e-5)
        self.up_layers = nn.ModuleList(ConformerLayer(dim, n_heads, ffn_dim, dropout) for _ in range(n_up_layers))
        self.out_norm = nn.LayerNorm(dim, eps=1e-5)
        self.dropout = nn.Dropout(dropout)

    def _stack(self, x, lengths, layers, chunk: int | None) -> torch.Tensor:
        """The layers over (B, T, D) with the padding (and, streaming, the chunk) mask."""
        length = x.shape[1]
        real = torch.arange(length, device=x.device)[None] < lengths[:, None]  # (B, T)
        mask = real[:, None, :].expand(-1, length, -1)  # (B, T, T): every query sees the real keys
        if chunk is not None:
            mask = mask & attention_mask("chunk", length, chunk, device=x.device)
        mask = mask | ~mask.any(dim=-1, keepdim=True)  # a query that sees nothing sees everything
        positions = relative_sinusoids(length, self.dim, x.device).to(x.dtype)
        for layer in layers:
            x = layer(x, positions, mask)
        return x

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, streaming: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        real = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None])[..., None]  # (B, L, 1)
        x = self.dropout(self.in_norm(self.in_proj(x)) * math.sqrt(self.dim))
        x = self.lookahead(x * real)
        x = self._stack(x, lengths, self.layers, self.chunk_tokens if streaming else None)  # (B, L, D)
        x = F.interpolate(x.transpose(1, 2), scale_factor=float(self.ratio), mode="nearest")  # (B, D, rL)
        x = self.upsample(F.pad(x, (2 * self.ratio, 0))).transpose(1, 2)  # (B, rL, D), causal
        lengths = lengths * self.ratio
        x = self.dropout(self.up_norm(self.up_proj(x)) * math.sqrt(self.dim))
        x = self._stack(x, lengths, self.up_layers, self.chunk_tokens * self.ratio if streaming else None)
        return self.out_norm(x), lengths
