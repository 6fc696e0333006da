"""Rotary position embeddings driven by explicit position ids.

Positions are passed in, not inferred from the column index, so a packed row such as
[phonemes ; audio] can restart at 0 for each segment and a left-padded row keeps the same
positions as its right-padded twin. The rotation pairs dimension i with i + D/2
(the GPT-NeoX layout).
"""

from __future__ import annotations

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    """Computes the rotation for given positions; `apply_rotary` applies it.

    Args:
        head_dim: size of one attention head (even).
        base: the frequency base (10,000 in RoFormer).
    """

    def __init__(self, head_dim: int, base: float = 10_000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
        self.head_dim = head_dim
        self.base = base

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cos and sin tables for the positions.

        Args:
            positions: (B, T) integer position ids.

        Returns:
            cos, sin: each (B, 1, T, head_dim // 2), float32 (broadcast over heads).
        """
        # Built in float32 on every call (cheap) rather than kept in a buffer that a
        # model-wide .to(bfloat16) would round.
        exponents = torch.arange(0, self.head_dim, 2, device=positions.device, dtype=torch.float32)
        inv_freq = self.base ** (-exponents / self.head_dim)  # (D/2,)
        angles = positions.to(torch.float32)[..., None] * inv_freq  # (B, T, D/2)
        angles = angles[:, None]  # (B, 1, T, D/2)
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates queries or keys.

    Args:
        x: (B, H, T, D).
        cos, sin: (B, 1, T, D/2) from `RotaryEmbedding`.

    Returns:
        (B, H, T, D) in the dtype of x.
    """
    half = x.shape[-1] // 2
    x1, x2 = x.float()[..., :half], x.float()[..., half:]  # (B, H, T, D/2) each
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.to(x.dtype)
