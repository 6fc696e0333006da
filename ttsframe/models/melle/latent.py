"""MELLE's per-step pieces around the transformer: frame grouping, the mel pre-net, and the
latent sampling module.

With reduction factor r, one decoder step reads and predicts r frames at once: a (B, T, M)
spectrogram is seen as (B, S, r * M) groups with S = ceil(T / r), the last group zero-padded.

The latent sampling module (Meng et al., 2024, sec. 3.2) turns a hidden state into a Gaussian
N(mu, diag(sigma^2)) over the group, samples z = mu + sigma * eps (in training *and* at
inference: the sampling is what makes two syntheses differ), and maps z back to the mel space
with a residual MLP: y' = z + MLP(z).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frames_to_groups(mel: torch.Tensor, r: int) -> torch.Tensor:
    """(B, T, M) -> (B, ceil(T / r), r * M); frames past T are zeros."""
    batch, n_frames, n_mels = mel.shape
    n_groups = -(-n_frames // r)
    mel = F.pad(mel, (0, 0, 0, n_groups * r - n_frames))  # (B, S * r, M)
    return mel.reshape(batch, n_groups, r * n_mels)


def groups_to_frames(groups: torch.Tensor, r: int) -> torch.Tensor:
    """(B, S, r * M) -> (B, S * r, M), frames in time order."""
    batch, n_groups, width = groups.shape
    return groups.reshape(batch, n_groups * r, width // r)


class MelPrenet(nn.Module):
    """Two ReLU layers with dropout (Tacotron's pre-net bottleneck), then a projection to the
    model width. The dropout is the usual one (off in eval), unlike Tacotron 2's always-on.

    Args:
        in_dim: r * n_mels.
        hidden: width of the two layers.
        out_dim: the transformer's width.
        dropout: after each of the two layers.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        """(B, S, r * M) -> (B, S, D)."""
        return self.layers(groups)


class LatentSampler(nn.Module):
    """hidden state -> (mu, log sigma^2) -> z = mu + sigma * eps -> y' = z + MLP(z).

    Args:
        d_model: width of the hidden states.
        out_dim: r * n_mels (the latent lives in the mel space, so KL(N(mu, sigma) || N(y, I))
            can compare it with the target frames directly).
        hidden: width of the residual MLP.
        dropout: inside the MLP.
    """

    def __init__(self, d_model: int, out_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.to_gaussian = nn.Linear(d_model, 2 * out_dim)  # mu, log-variance
        self.mlp = nn.Sequential(
            nn.Linear(out_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, hidden: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Samples one latent per step and decodes it.

        Args:
            hidden: (B, S, D) hidden states.
            noise: (B, S, r * M) eps, already scaled by the temperature (zeros: z = mu).

        Returns:
            coarse (B, S, r * M) the predicted frames before the post-net, mu and logvar
            (B, S, r * M) each.
        """
        mu, logvar = self.to_gaussian(hidden).chunk(2, dim=-1)  # (B, S, rM) each
        z = mu + torch.exp(0.5 * logvar) * noise
        return z + self.mlp(z), mu, logvar
