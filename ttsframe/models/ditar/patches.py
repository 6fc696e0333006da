"""DiTAR's representation: the continuous frames it models, and their grouping into patches.

Representation. The model reads and writes (B, T, D) frames; which frames is a registered choice
(`REPRESENTATIONS`). "mel" (the default) is the per-bin standardised log-mel the shards hold, so
D = n_mels; the standardisation itself is the model's `normalize`, whose buffers travel with the
weights. A learned latent (the paper models a VAE's latents) plugs in as another entry: an
``nn.Module`` with ``dim`` and ``encode`` / ``decode`` between standardised log-mel and its frames,
lengths included (its frame rate may differ from the mel's), and the model needs no change.

Patches. P consecutive frames form one patch, the unit the LM steps over: (B, T, D) ->
(B, N, P, D) with N = ceil(T / P); a row's last patch is zero-padded and a (B, N, P) mask marks
the real frames. History: LocDiT reads the K patches before patch i. `history_patches` gathers
them for every patch at once (training), `last_patches` for each row's next patch (generation);
patches before the start of an utterance are zeros with a False mask.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZES = (1, 2, 4, 8)


class MelFrames(nn.Module):
    """The identity representation: standardised log-mel frames are the frames (D = n_mels)."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.dim = n_mels

    def encode(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_mels) standardised log-mel, (B,) -> (B, T, D) frames, (B,) frame lengths."""
        return mel, lengths

    def decode(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) frames, (B,) -> (B, T, n_mels) standardised log-mel, (B,) mel lengths."""
        return frames, lengths


REPRESENTATIONS: dict[str, Callable[[int], nn.Module]] = {
    "mel": MelFrames,
}


def build_representation(name: str, n_mels: int) -> nn.Module:
    """The named representation over ``n_mels``-band log-mel; an unknown name lists the valid ones."""
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; valid: {', '.join(REPRESENTATIONS)}")
    return REPRESENTATIONS[name](n_mels)


def patches_for(frame_lengths: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patches of rows with these frame counts: ceil(T / P), (B,) long."""
    return torch.div(frame_lengths.long() + patch_size - 1, patch_size, rounding_mode="floor")


def frames_to_patches(
    frames: torch.Tensor, lengths: torch.Tensor, patch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Groups frames into patches.

    Args:
        frames: (B, T, D), any values past the lengths.
        lengths: (B,) real frames per row.
        patch_size: P.

    Returns:
        patches (B, N, P, D) with N = ceil(T / P), zeros past each length; frame_mask (B, N, P)
        bool, True at real frames.
    """
    batch, n_frames, dim = frames.shape
    n_patches = -(-n_frames // patch_size)
    mask = torch.arange(n_patches * patch_size, device=frames.device)[None] < lengths[:, None]  # (B, N * P)
    frames = F.pad(frames, (0, 0, 0, n_patches * patch_size - n_frames)).masked_fill(~mask[..., None], 0.0)
    return frames.view(batch, n_patches, patch_size, dim), mask.view(batch, n_patches, patch_size)


def patches_to_frames(patches: torch.Tensor) -> torch.Tensor:
    """(B, N, P, D) -> (B, N * P, D), frames in time order."""
    batch, n_patches, patch_size, dim = patches.shape
    return patches.reshape(batch, n_patches * patch_size, dim)


def history_patches(patches: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The K patches before each patch, oldest first.

    Args:
        patches: (B, N, P, D).
        k: K >= 0.

    Returns:
        history (B, N, K, P, D), where history[:, i, m] is patch i - K + m (zeros before patch 0);
        mask (N, K) bool, True where that patch exists (i - K + m >= 0).
    """
    batch, n_patches = patches.shape[:2]
    padded = F.pad(patches, (0, 0, 0, 0, k, 0))  # (B, K + N, P, D)
    history = torch.stack([padded[:, m : m + n_patches] for m in range(k)], dim=2) if k else \
        patches.new_zeros(batch, n_patches, 0, *patches.shape[2:])
    index = torch.arange(n_patches, device=patches.device)[:, None] + torch.arange(k, device=patches.device)
    return history, index >= k


def last_patches(patches: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's last K real patches, oldest first: the history of its next patch.

    Args:
        patches: (B, G, P, D), G >= 0; lengths: (B,) real patches per row (<= G); k: K >= 0.

    Returns:
        history (B, K, P, D), zeros where a row has fewer than K patches; mask (B, K) bool, True
        at real patches.
    """
    padded = F.pad(patches, (0, 0, 0, 0, k, 0))  # (B, K + G, P, D)
    index = lengths.long()[:, None] + torch.arange(k, device=patches.device)  # (B, K) in padded
    gather = index[..., None, None].expand(-1, -1, *patches.shape[2:])
    return padded.gather(1, gather), index >= k
