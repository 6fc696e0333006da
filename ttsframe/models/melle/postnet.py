"""Convolutional post-net: refines the whole predicted spectrogram, residually (Tacotron 2 style).

Five 1-D convolutions over time; the first four are followed by a per-frame LayerNorm (over
channels, so no statistics cross frames or rows, unlike BatchNorm), tanh and dropout. The last
one starts at zero, so an untrained post-net is the identity. Padding frames are zeroed before
every convolution: what lies past a row's length never reaches its real frames.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvLayer(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, dropout: float, last: bool):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2)
        self.last = last
        if last:
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
        else:
            self.norm = nn.LayerNorm(out_dim)
            self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C_in); mask: (B, T) True at real frames. Returns (B, T, C_out)."""
        x = x.masked_fill(~mask[..., None], 0.0)
        y = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C_out)
        if self.last:
            return y
        return self.dropout(torch.tanh(self.norm(y)))


class PostNet(nn.Module):
    """mel (B, T, M) -> mel + residual (B, T, M).

    Args:
        n_mels: M.
        channels: width of the hidden convolutions.
        kernel_size: odd, so the output keeps the length.
        n_layers: convolutions in all (5 in Tacotron 2 and MELLE).
        dropout: after each hidden convolution.
    """

    def __init__(self, n_mels: int, channels: int, kernel_size: int = 5, n_layers: int = 5, dropout: float = 0.1):
        super().__init__()
        if kernel_size % 2 == 0 or n_layers < 2:
            raise ValueError(f"post-net needs an odd kernel and >= 2 layers, got {kernel_size}, {n_layers}")
        dims = [n_mels] + [channels] * (n_layers - 1) + [n_mels]
        self.layers = nn.ModuleList(
            ConvLayer(dims[i], dims[i + 1], kernel_size, dropout, last=i == n_layers - 1) for i in range(n_layers)
        )

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """mel: (B, T, M); mask: (B, T) bool. Returns (B, T, M), zeros at padding."""
        x = mel
        for layer in self.layers:
            x = layer(x, mask)
        return (mel + x).masked_fill(~mask[..., None], 0.0)
