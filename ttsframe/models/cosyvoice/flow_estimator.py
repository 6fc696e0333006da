"""The velocity estimator of the flow decoder: a DiT over mel frames.

CosyVoice uses a conformer U-Net (Matcha-TTS's decoder) here. We use a DiT-style stack of
`ttsframe.modules.transformer.Transformer` blocks instead: one backbone shared with the rest
of ttsframe (rotary positions, FlashAttention/SDPA, FSDP wrapping), and CosyVoice 2's chunk
masks are then just attention masks, with no convolution whose receptive field would leak
future frames into a chunk. The input of frame i is concat[x_t, mu, prompt mel, speaker] (all
projected to n_mels, then to d_model); the flow time t (and the speaker) enter every layer
through adaptive layer norm, F5-TTS / DiT style.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from ttsframe.modules.transformer import Transformer, TransformerConfig


@dataclass
class FlowContext:
    """Everything but x_t and t that the estimator reads; zeros where a condition is dropped."""

    mu: torch.Tensor  # (B, T, M) token conditioning after the length regulator
    prompt: torch.Tensor  # (B, T, M) normalised prompt mel over the prompt frames, zeros elsewhere
    spk: torch.Tensor  # (B, spk_dim) L2-normalised speaker embedding
    padding_mask: torch.Tensor  # (B, T) bool, True at real frames
    attn_mask: torch.Tensor | None = None  # (T, T) or (B, T, T) bool, see flow_masks

    def dropped(self, keep: torch.Tensor | None = None) -> FlowContext:
        """All conditions zeroed together (classifier-free guidance) where ``keep`` (B,) is False;
        ``keep`` None: dropped in every row."""
        if keep is None:
            keep = torch.zeros(self.mu.shape[0], dtype=torch.bool, device=self.mu.device)
        k = keep.to(self.mu.dtype)
        return dataclasses.replace(self, mu=self.mu * k[:, None, None], prompt=self.prompt * k[:, None, None],
                                   spk=self.spk * k[:, None])

    def stacked(self, other: FlowContext) -> FlowContext:
        """This context and ``other`` along the batch: (2B, ...)."""
        mask = self.attn_mask  # (T, T) is shared by every row
        if mask is not None and mask.dim() == 3:
            mask = torch.cat([mask, other.attn_mask])
        return FlowContext(torch.cat([self.mu, other.mu]), torch.cat([self.prompt, other.prompt]),
                           torch.cat([self.spk, other.spk]), torch.cat([self.padding_mask, other.padding_mask]), mask)


def time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding of flow times: (B,) in [0, 1] -> (B, dim) float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t.float()[:, None] * freqs  # (B, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FlowEstimator(nn.Module):
    """v(x_t, t | mu, prompt, spk): (B, T, M) -> (B, T, M).

    Args:
        n_mels: M.
        spk_dim: size of the speaker embedding.
        transformer: the DiT's sizes; its ``cond_dim`` must be its ``d_model``.
        time_dim: size of the sinusoidal time embedding.
    """

    def __init__(self, n_mels: int, spk_dim: int, transformer: TransformerConfig, time_dim: int = 256):
        super().__init__()
        d_model = transformer.d_model
        if transformer.cond_dim != d_model:
            raise ValueError(f"the estimator's transformer needs cond_dim = d_model = {d_model}")
        self.time_dim = time_dim
        self.spk_to_mel = nn.Linear(spk_dim, n_mels, bias=False)  # no bias: a dropped speaker is zeros
        self.spk_to_cond = nn.Linear(spk_dim, d_model, bias=False)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.in_proj = nn.Linear(4 * n_mels, d_model)
        self.transformer = Transformer(transformer)
        self.out_proj = nn.Linear(d_model, n_mels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, ctx: FlowContext) -> torch.Tensor:
        """The velocity at x_t (B, T, M), flow times t (B,); zeros at padded frames."""
        batch, length, _ = x.shape
        spk_mel = self.spk_to_mel(ctx.spk)[:, None].expand(-1, length, -1)  # (B, T, M)
        h = self.in_proj(torch.cat([x, ctx.mu, ctx.prompt, spk_mel], dim=-1))  # (B, T, D)
        cond = self.time_mlp(time_embedding(t, self.time_dim).to(h.dtype)) + self.spk_to_cond(ctx.spk)  # (B, D)
        positions = torch.arange(length, device=x.device).expand(batch, length)  # (B, T)
        h = self.transformer(h, positions, ctx.padding_mask, cond=cond, attn_mask=ctx.attn_mask)
        return self.out_proj(h).masked_fill(~ctx.padding_mask[..., None], 0.0)
