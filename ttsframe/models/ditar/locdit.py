"""LocDiT, DiTAR's local diffusion transformer: the velocity of one noisy patch, given the LM.

One row per patch i, attended in both directions, rotary positions 0 .. K * P + P:

    [ c_i ; the K history patches (K * P clean frames) ; the P noisy frames x_t ]

with c_i = W h_i + e(t): the LM's hidden state h_i projected to LocDiT's width, plus the time
embedding e(t) (an MLP over a sinusoidal embedding of t). The output is read at the P noisy
positions only: the v-prediction of `diffusion.py`.

Time conditioning: both ways. The paper's is the prefix token (the LM output as LocDiT's first
token, with the time embedding added); we also condition every layer norm on e(t) (DiT's adaptive
layer norm, `cond` of the shared `TransformerBlock`), so each layer sees the noise level directly.
The adaptive norms start as plain layer norms (zero-initialised projections).

History: patches before the start of an utterance are zero frames and masked out of attention
(key padding), so no query reads them and no learned pad is needed. K = 0 leaves [c_i ; x_t].
Clean and noisy frames have their own input projections (the positions alone would tell them
apart; two projections make the roles explicit for D * d weights).

Classifier-free guidance: the unconditional row has h_i = 0 (so c_i = bias + e(t)); the history
stays, as it is the signal being continued rather than the condition.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ttsframe.modules.transformer import Transformer, TransformerConfig


def sinusoidal(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(R,) times in [0, 1] -> (R, dim) float32: [sin, cos] of 1000 t at geometric frequencies."""
    freqs = torch.exp(-math.log(10_000.0) / (dim // 2) * torch.arange(dim // 2, device=t.device))  # (dim/2,)
    angles = 1000.0 * t.float()[:, None] * freqs  # (R, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class LocDiT(nn.Module):
    """v(x_t, t | h_i, history): (R, P, D) -> (R, P, D), one row per patch.

    Args:
        frame_dim: D, the width of one frame.
        cond_dim: the LM's width (of h_i).
        config: LocDiT's sizes; non-causal, with ``cond_dim`` = ``d_model`` (the time embedding).
        time_dim: width of the sinusoidal time embedding (even).
    """

    def __init__(self, frame_dim: int, cond_dim: int, config: TransformerConfig, time_dim: int = 256):
        super().__init__()
        if config.causal or config.cond_dim != config.d_model:
            raise ValueError(f"LocDiT needs a non-causal transformer with cond_dim = d_model = {config.d_model}")
        d_model = config.d_model
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.cond_proj = nn.Linear(cond_dim, d_model)
        self.history_proj = nn.Linear(frame_dim, d_model)
        self.noisy_proj = nn.Linear(frame_dim, d_model)
        self.transformer = Transformer(config)
        self.out_proj = nn.Linear(d_model, frame_dim)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        history: torch.Tensor,
        history_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The v-prediction at the noisy frames.

        Args:
            x_t: (R, P, D) noisy patches at times t (R,).
            cond: (R, cond_dim) the LM's h_i (zeros: unconditional).
            history: (R, K, P, D) the clean patches before, oldest first; history_mask (R, K) bool,
                True at patches that exist.

        Returns:
            (R, P, D) predicted v.
        """
        rows, patch_size, _ = x_t.shape
        time = self.time_mlp(sinusoidal(t, self.time_dim).to(x_t.dtype))  # (R, d)
        prefix = (self.cond_proj(cond.to(x_t.dtype)) + time)[:, None]  # (R, 1, d)
        past = self.history_proj(history.flatten(1, 2))  # (R, K * P, d)
        x = torch.cat([prefix, past, self.noisy_proj(x_t)], dim=1)  # (R, 1 + K * P + P, d)
        keep = torch.ones(rows, 1 + patch_size, dtype=torch.bool, device=x.device)
        mask = torch.cat([keep[:, :1], history_mask.repeat_interleave(patch_size, dim=1), keep[:, 1:]], dim=1)
        positions = torch.arange(x.shape[1], device=x.device).expand(rows, -1)  # (R, L)
        h = self.transformer(x, positions, mask, cond=time)  # (R, L, d)
        return self.out_proj(h[:, -patch_size:])
