"""Chunk-aware attention masks of CosyVoice 2's flow decoder (one model, offline and streaming).

Every mode is a chunk pattern: a position belongs to chunk ``id`` and sees every position of
its own chunk and of earlier chunks, ``mask[i, j] = id[j] <= id[i]`` (True: may attend).

    full    all ids 0           every position sees every position (non-causal)
    causal  id = index          a position sees itself and the past
    chunk   id = index // C     chunks of C positions; "causal" is chunk with C = 1

The token encoder and the estimator share one choice, at their own rates. The encoder's
chunks are C tokens. A mel frame's chunk is that of the latest token the length regulator
lets it read (`flow.regulate_length` returns it), so the first k chunks of mel depend on the
first k chunks of tokens only, whatever the (non-integer) ratio of mel and token rates. In
training each batch draws one of: full, causal, chunk C, chunk 2C (C = ``chunk_tokens``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import torch

MASK_MODES = ("full", "causal", "chunk")


@dataclass(frozen=True)
class MaskChoice:
    """One attention pattern: ``mode`` in MASK_MODES, ``chunk_tokens`` (C) for "chunk"."""

    mode: str = "full"
    chunk_tokens: int | None = None

    def __post_init__(self):
        if self.mode not in MASK_MODES:
            raise ValueError(f"unknown mask mode {self.mode!r}; valid: {', '.join(MASK_MODES)}")
        if self.mode == "chunk" and (self.chunk_tokens is None or self.chunk_tokens < 1):
            raise ValueError(f"mask mode 'chunk' needs chunk_tokens >= 1, got {self.chunk_tokens}")


def chunk_ids(mode: str, length: int, chunk_size: int | None = None, device=None) -> torch.Tensor:
    """(T,) long chunk index of each position under ``mode`` (chunk_size C for "chunk")."""
    MaskChoice(mode, chunk_size)  # validates
    index = torch.arange(length, device=device)
    if mode == "full":
        return torch.zeros_like(index)
    return index if mode == "causal" else torch.div(index, chunk_size, rounding_mode="floor")


def mask_from_chunk_ids(ids: torch.Tensor) -> torch.Tensor:
    """(..., T) chunk ids -> (..., T, T) bool, True where query i may see key j (id_j <= id_i)."""
    return ids[..., None, :] <= ids[..., :, None]


def attention_mask(
    mode: str,
    length: int,
    chunk_size: int | None = None,
    lengths: torch.Tensor | None = None,
    device=None,
) -> torch.Tensor:
    """The (T, T) pattern of ``mode``; with ``lengths`` (B,), (B, T, T) limited to real positions.

    Inside a model pass the padding to `attention` as ``key_padding_mask`` instead: a padded
    query that sees no key at all is what this function gives (rows of False).
    """
    mask = mask_from_chunk_ids(chunk_ids(mode, length, chunk_size, device))  # (T, T)
    if lengths is None:
        return mask
    real = torch.arange(length, device=mask.device)[None] < lengths.to(mask.device)[:, None]  # (B, T)
    return mask & real[:, None, :] & real[:, :, None]  # (B, T, T)


def token_mask(choice: MaskChoice, n_tokens: int, device=None) -> torch.Tensor | None:
    """The encoder's (T_tok, T_tok) mask; None for "full" (padding alone, any backend)."""
    if choice.mode == "full":
        return None
    return attention_mask(choice.mode, n_tokens, choice.chunk_tokens, device=device)


def frame_mask(choice: MaskChoice, sources: torch.Tensor) -> torch.Tensor | None:
    """The estimator's mask over mel frames; None for "full".

    Args:
        choice: the pattern, shared with the token encoder.
        sources: (B, T_mel) long, the latest token index each frame reads.

    Returns:
        (T_mel, T_mel) for "causal" (frame-causal), (B, T_mel, T_mel) for "chunk", or None.
    """
    if choice.mode == "full":
        return None
    if choice.mode == "causal":
        return attention_mask("causal", sources.shape[1], device=sources.device)
    return mask_from_chunk_ids(torch.div(sources, choice.chunk_tokens, rounding_mode="floor"))


def check_mask_probs(probs: Sequence[float]) -> None:
    """Fails unless ``probs`` are 4 non-negative weights (full, causal, chunk C, chunk 2C), not all 0."""
    if len(probs) != 4 or min(probs) < 0 or sum(probs) <= 0:
        raise ValueError(f"mask_probs needs 4 non-negative weights (full, causal, chunk, chunk2), got {probs}")


def draw_mask_choice(
    probs: Sequence[float],
    chunk_tokens: int,
    generator: torch.Generator | None = None,
) -> MaskChoice:
    """Draws the training pattern of one batch.

    Args:
        probs: weights of (full, causal, chunk C, chunk 2C); need not sum to 1.
        chunk_tokens: C.
        generator: random source (its device is used); None: the global RNG.

    Returns:
        The drawn `MaskChoice`.
    """
    check_mask_probs(probs)
    device = generator.device if generator is not None else "cpu"
    u = float(torch.rand((), generator=generator, device=device)) * sum(probs)
    choices = (MaskChoice("full"), MaskChoice("causal"), MaskChoice("chunk", chunk_tokens),
               MaskChoice("chunk", 2 * chunk_tokens))
    for choice, cumulative in zip(choices, itertools.accumulate(probs)):
        if u < cumulative:
            return choice
    return choices[max(i for i, p in enumerate(probs) if p > 0)]  # u == sum, by rounding
