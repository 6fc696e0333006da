"""Finite scalar quantisation (Mentzer et al., 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

A vector is projected to d = len(levels) dimensions; dimension j is bounded to an interval that
holds exactly levels[j] integers and rounded to the nearest of them, with a straight-through
estimator for the gradient. The implicit codebook is the grid of all combinations:
prod(levels) codes, no codebook parameters, no commitment loss, no dead-code tricks.

Grid of one dimension with L levels (`half = L // 2`; integers before scaling):
    odd L = 5:   -2 -1 0 1 2      bound: tanh(z) * 2
    even L = 4:  -2 -1 0 1        bound: tanh(z + shift) * 1.5 - 0.5, shift = atanh(0.5 / 1.5),
                                  so z = 0 still maps to 0 and the 4 rounding cells are symmetric
Codes are the integers divided by `half` (in [-1, 1]); an index is the mixed-radix number whose
digits are the integers + half (digit j in [0, L_j), dimension 0 the least significant).
"""

from __future__ import annotations

import math

import torch
from torch import nn

_EPS = 1e-3  # widens the bound a hair: L = 2 needs offset / half-width < 1 for atanh; still rounds to L values


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


class FSQ(nn.Module):
    """Projection in, bound, round (straight-through), projection out.

    Args:
        levels: levels per dimension, each >= 2, e.g. (3,) * 8 (6561 codes) or (8, 5, 5, 5) (1000).
        dim: width of the vectors it quantises; None: inputs already have len(levels) dimensions
            and no projections are made.
    """

    def __init__(self, levels: tuple[int, ...], dim: int | None = None):
        super().__init__()
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty tuple of integers >= 2, got {levels}")
        self.levels = tuple(int(n) for n in levels)
        levels_t = torch.tensor(self.levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1], dtype=torch.long), dim=0)
        self.register_buffer("_levels", levels_t, persistent=False)  # (d,)
        self.register_buffer("_half", torch.floor(levels_t / 2), persistent=False)  # (d,)
        self.register_buffer("_basis", basis, persistent=False)  # (d,) mixed-radix place values
        d = len(self.levels)
        self.project_in = nn.Linear(dim, d) if dim is not None and dim != d else nn.Identity()
        self.project_out = nn.Linear(d, dim) if dim is not None and dim != d else nn.Identity()

    @property
    def codebook_size(self) -> int:
        """The implicit codebook: prod(levels)."""
        return math.prod(self.levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., d) -> (..., d) inside (-half_j - 0.5, L_j - half_j - 0.5): rounds to L_j integers."""
        half_width = (self._levels - 1) * (1 + _EPS) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_width)
        return torch.tanh(z + shift) * half_width - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., d) -> codes (..., d) on the grid (integers / half), straight-through gradient."""
        return round_ste(self.bound(z)) / self._half

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (..., d) on the grid -> indices (...) long in [0, codebook_size)."""
        digits = torch.round(codes * self._half + self._half).long()  # (..., d) in [0, L_j)
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (...) long -> codes (..., d) float on the grid."""
        digits = (indices[..., None] // self._basis) % self._levels.long()  # (..., d)
        return (digits.float() - self._half) / self._half

    def forward(self, x: torch.Tensor, quantize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """x (..., dim) -> (out (..., dim), indices (...) long).

        quantize=False skips the rounding: `out` comes from the bounded, continuous codes (the
        warm-up path: the encoder learns to spread its outputs over the bounded range before
        rounding starts, when all its frames would otherwise round to one code) and `indices`
        are those rounding would give, for watching the codebook meanwhile.
        """
        z = self.project_in(x)  # (..., d)
        codes = self.quantize(z)  # (..., d) on the grid
        indices = self.codes_to_indices(codes.detach())  # (...)
        if not quantize:
            codes = self.bound(z) / self._half
        return self.project_out(codes), indices

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., dim) -> indices (...) long."""
        return self.codes_to_indices(self.quantize(self.project_in(x)))
