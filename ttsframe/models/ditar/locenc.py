"""LocEnc, DiTAR's aggregation encoder: one embedding per patch for the language model.

A small bidirectional transformer reads [learned token ; the P frames of one patch] (rotary
positions 0..P) and the token's output, projected to the LM's width, is the patch's embedding.
All patches of a batch run at once as (B * N, 1 + P, d) rows. The encoder sees one patch only,
and no mask: every patch it encodes is whole (the LM's inputs are the patches before the last one,
and an acoustic prompt is cut to whole patches).
"""

from __future__ import annotations

import torch
from torch import nn

from ttsframe.modules.transformer import Transformer, TransformerConfig


class LocEnc(nn.Module):
    """(B, N, P, D) patches -> (B, N, out_dim) embeddings.

    Args:
        frame_dim: D, the width of one frame.
        out_dim: the LM's width.
        config: the encoder's sizes; ``config.causal`` must be False.
    """

    def __init__(self, frame_dim: int, out_dim: int, config: TransformerConfig):
        super().__init__()
        if config.causal:
            raise ValueError("LocEnc attends within a patch in both directions: config.causal must be False")
        self.in_proj = nn.Linear(frame_dim, config.d_model)
        self.token = nn.Parameter(torch.randn(config.d_model) * 0.02)
        self.transformer = Transformer(config)
        self.out_proj = nn.Linear(config.d_model, out_dim)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N, P, D) whole patches -> (B, N, out_dim), one embedding each."""
        batch, n_patches, patch_size, _ = patches.shape
        if batch * n_patches == 0:
            return patches.new_zeros(batch, n_patches, self.out_proj.out_features)
        x = self.in_proj(patches.reshape(batch * n_patches, patch_size, -1))  # (B * N, P, d)
        token = self.token.to(x.dtype).expand(x.shape[0], 1, -1)  # (B * N, 1, d)
        x = torch.cat([token, x], dim=1)  # (B * N, 1 + P, d)
        positions = torch.arange(1 + patch_size, device=x.device).expand(x.shape[0], -1)  # (B * N, 1 + P)
        h = self.transformer(x, positions)[:, 0]  # (B * N, d)
        return self.out_proj(h).view(batch, n_patches, -1)  # (B, N, out_dim)
