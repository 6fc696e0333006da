"""CosyVoice 2's velocity estimator: a causal 1-D U-Net with transformer blocks (Matcha-TTS's decoder,
made causal), one resolution level as CosyVoice 2 configures it.

    concat[x_t, mu, speaker, prompt mel] (B, 4M, T)
      -> down: res block + k transformer blocks + causal conv          (kept for the skip)
      -> n_mid x (res block + k transformer blocks)
      -> up:   concat with the skip, res block + k transformer blocks + causal conv
      -> causal conv block -> 1x1 conv -> velocity (B, M, T), zero at padded frames

A res block is two causal conv(3) + LayerNorm + Mish blocks with the flow time (sinusoids -> MLP)
added between them, plus a 1x1 skip conv. Transformer blocks are pre-norm self-attention (no
bias on q, k, v) and a GELU feed-forward; with ``streaming`` each frame attends to its own chunk
and the chunks before it (chunk masks of ``chunk_frames``), so the estimator runs chunk by chunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.models.cosyvoice.flow_masks import attention_mask
from ttsframe.modules.attention import attention


def matcha_time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """(B,) flow times -> (B, dim): [sin, cos] of scale * t at frequencies 10000^(-i / (dim/2 - 1))."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000.0) / (half - 1)))
    angles = scale * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def causal_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """A stride-1 conv that sees only the present and the past: left zero padding of kernel - 1."""
    return conv(F.pad(x, (conv.kernel_size[0] - 1, 0)))


class ConvBlock(nn.Module):
    """(B, C_in, T) -> (B, C_out, T): causal conv(3) -> LayerNorm over channels -> Mish, masked."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 3)
        self.norm = nn.LayerNorm(c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # mask (B, 1, T)
        h = causal_conv(x * mask, self.conv)
        return F.mish(self.norm(h.transpose(1, 2)).transpose(1, 2)) * mask


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, time_dim: int):
        super().__init__()
        self.block1, self.block2 = ConvBlock(c_in, c_out), ConvBlock(c_out, c_out)
        self.time_proj = nn.Linear(time_dim, c_out)
        self.skip = nn.Conv1d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.time_proj(F.mish(time))[:, :, None]  # time (B, time_dim)
        return self.block2(h, mask) + self.skip(x * mask)


class TransformerBlock(nn.Module):
    """(B, T, C) -> (B, T, C): x + attention(LN(x)), x + FFN(LN(x)); attention width heads x head_dim."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, dropout: float = 0.0):
        super().__init__()
        inner = n_heads * head_dim
        self.n_heads, self.head_dim, self.dropout = n_heads, head_dim, dropout
        self.attn_norm = nn.LayerNorm(dim)
        self.q, self.k, self.v = (nn.Linear(dim, inner, bias=False) for _ in range(3))
        self.out = nn.Linear(inner, dim)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff_up, self.ff_down = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, chunk_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, _ = x.shape
        h = self.attn_norm(x)
        q, k, v = (proj(h).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.q, self.k, self.v))  # (B, H, T, d)
        a = attention(q, k, v, causal=False, key_padding_mask=padding, attn_mask=chunk_mask,
                      dropout_p=self.dropout if self.training else 0.0, backend="sdpa")
        x = x + self.out(a.transpose(1, 2).reshape(batch, length, -1))
        return x + self.ff_down(F.dropout(F.gelu(self.ff_up(self.ff_norm(x))), self.dropout, self.training))


class Stage(nn.Module):
    """A res block then transformer blocks, in (B, C, T); `post`: an optional causal conv(3) after."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, n_blocks: int, n_heads: int, head_dim: int,
                 post: bool, dropout: float = 0.0):
        super().__init__()
        self.res = ResBlock(c_in, c_out, time_dim)
        self.blocks = nn.ModuleList(TransformerBlock(c_out, n_heads, head_dim, dropout) for _ in range(n_blocks))
        self.post = nn.Conv1d(c_out, c_out, 3) if post else None

    def forward(self, x, mask, time, chunk_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (output, the hidden state before `post`)."""
        h = self.res(x, mask, time).transpose(1, 2)  # (B, T, C)
        padding = mask[:, 0].bool()
        for block in self.blocks:
            h = block(h, padding, chunk_mask)
        h = h.transpose(1, 2)  # (B, C, T)
        return (causal_conv(h * mask, self.post) if self.post is not None else h), h


class CausalUNetEstimator(nn.Module):
    """v(x_t, t | mu, spk, prompt) in (B, M, T) channels-first, as CosyVoice 2's estimator.

    Args:
        n_mels: M; the input is 4M channels (x_t, mu, speaker projected to M, prompt mel).
        channels: width of the one level.
        n_blocks: transformer blocks per stage; n_mid: middle stages.
        n_heads, head_dim: attention (its width n_heads * head_dim may differ from `channels`).
        chunk_frames: the streaming chunk, in mel frames.
    """

    def __init__(self, n_mels: int, channels: int, n_blocks: int, n_mid: int, n_heads: int, head_dim: int,
                 chunk_frames: int, dropout: float = 0.0):
        super().__init__()
        self.in_channels, self.chunk_frames = 4 * n_mels, chunk_frames
        time_dim = 4 * channels
        self.time_mlp = nn.Sequential(nn.Linear(self.in_channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        stage = dict(time_dim=time_dim, n_blocks=n_blocks, n_heads=n_heads, head_dim=head_dim, dropout=dropout)
        self.down = Stage(self.in_channels, channels, post=True, **stage)
        self.mid = nn.ModuleList(Stage(channels, channels, post=False, **stage) for _ in range(n_mid))
        self.up = Stage(2 * channels, channels, post=True, **stage)
        self.final = ConvBlock(channels, channels)
        self.out_proj = nn.Conv1d(channels, n_mels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor, spk: torch.Tensor,
                cond: torch.Tensor, streaming: bool = False) -> torch.Tensor:
        """x, mu, cond (B, M, T); mask (B, 1, T) float; t (B,); spk (B, M) -> velocity (B, M, T)."""
        time = self.time_mlp(matcha_time_embedding(t, self.in_channels).to(x.dtype))  # (B, 4C)
        h = torch.cat([x, mu, spk[:, :, None].expand(-1, -1, x.shape[2]), cond], dim=1)  # (B, 4M, T)
        chunk_mask = attention_mask("chunk", x.shape[2], self.chunk_frames, device=x.device) if streaming else None
        h, skip = self.down(h, mask, time, chunk_mask)
        for stage in self.mid:
            h, _ = stage(h, mask, time, chunk_mask)
        h, _ = self.up(torch.cat([h, skip], dim=1), mask, time, chunk_mask)
        h = self.final(h, mask)
        return self.out_proj(h * mask) * mask
