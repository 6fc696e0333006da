"""Key/value cache for incremental decoding with `ttsframe.modules.transformer.Transformer`.

One `LayerKVCache` per transformer layer holds that layer's keys and values; the `KVCache`
around them also keeps the key padding mask of everything cached, so a decode step only
says which of its own new positions are real. Each layer cache is either preallocated
(``max_length`` given: written in place, no reallocation per step) or growing (``None``:
concatenated per step, handy when the final length is unknown).
"""

from __future__ import annotations

import torch


class LayerKVCache:
    """Keys and values of one attention layer, (B, H, T, D) each.

    Args:
        max_length: preallocate room for this many positions; None grows on demand.
    """

    def __init__(self, max_length: int | None = None):
        self.max_length = max_length
        self.length = 0
        self._keys: torch.Tensor | None = None  # (B, H, T or max_length, D)
        self._values: torch.Tensor | None = None

    def update(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Appends new positions and returns every cached position.

        Args:
            keys, values: (B, H, t, D) for the t new positions.

        Returns:
            keys, values: (B, H, T, D) with T = positions cached so far, the new ones last.
        """
        new_length = self.length + keys.shape[2]
        if self.max_length is None:
            if self._keys is None:
                self._keys, self._values = keys, values
            else:
                self._keys = torch.cat([self._keys, keys], dim=2)
                self._values = torch.cat([self._values, values], dim=2)
        else:
            if new_length > self.max_length:
                raise ValueError(f"KV cache overflow: {new_length} positions > max_length {self.max_length}")
            if self._keys is None:
                batch, n_heads, _, head_dim = keys.shape
                shape = (batch, n_heads, self.max_length, head_dim)
                self._keys = keys.new_empty(shape)
                self._values = values.new_empty(shape)
            self._keys[:, :, self.length : new_length] = keys
            self._values[:, :, self.length : new_length] = values
        self.length = new_length
        return self._keys[:, :, :new_length], self._values[:, :, :new_length]


class KVCache:
    """Per-layer caches plus the padding mask of the cached positions.

    Args:
        n_layers: number of transformer layers.
        max_length: preallocated length per layer; None for growing caches.
    """

    def __init__(self, n_layers: int, max_length: int | None = None):
        self.layers = [LayerKVCache(max_length) for _ in range(n_layers)]
        self.padding_mask: torch.Tensor | None = None  # (B, T) bool, True at real positions

    @property
    def length(self) -> int:
        """Positions cached so far (the mask's length: layers catch up within a forward)."""
        return 0 if self.padding_mask is None else self.padding_mask.shape[1]

    def extend_padding_mask(self, new_mask: torch.Tensor) -> torch.Tensor:
        """Records which new positions are real; call once per forward, before the layers.

        Args:
            new_mask: (B, t) bool for the t new positions.

        Returns:
            (B, T) bool mask over every cached position including the new ones.
        """
        new_mask = new_mask.to(torch.bool)
        if self.padding_mask is None:
            self.padding_mask = new_mask
        else:
            self.padding_mask = torch.cat([self.padding_mask, new_mask], dim=1)
        return self.padding_mask
