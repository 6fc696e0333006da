"""Token sampling for autoregressive generation: one frozen options dataclass, small filters.

`sample_next` composes the pieces in a fixed order:

    logits -> temperature -> top-k -> top-p -> draw
           -> repetition-aware fallback (VALL-E 2): if the drawn token already fills more
              than ``repetition_threshold`` of the last ``repetition_window`` tokens, draw
              again from the full (temperature-scaled, unfiltered) distribution.

Every random draw goes through the caller's ``torch.Generator``, and every row draws the
same number of times whatever happens, so a seed fixes the whole output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick the next token and when to stop.

    Attributes:
        temperature: logits are divided by it; 0 picks the most likely token (greedy).
        top_k: keep the k most likely tokens; 0 keeps all.
        top_p: keep the smallest set of tokens whose probability reaches p; 1.0 keeps all.
        repetition_window: recent tokens that repetition-aware sampling looks at; 0 disables
            it (VALL-E 2 uses 10).
        repetition_threshold: fall back to the full distribution when the drawn token's
            share of the window exceeds this ratio (VALL-E 2 uses 0.1).
        max_frames_per_token: generation budget per target phoneme...
        max_frames_base: ...plus this many frames: max frames = per_token * n + base.
        min_frames: the end token is suppressed before this many frames are generated...
        min_frames_per_token: ...or before this many frames per target phoneme, whichever is
            more (0: off). A floor against an undertrained AR ending after a few frames;
            speech runs at ~6-8 frames per phoneme at 75-86 frames/s.
        seed: seeds the generator that generation creates.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_window: int = 0
    repetition_threshold: float = 0.1
    max_frames_per_token: float = 20.0
    max_frames_base: int = 75
    min_frames: int = 1
    min_frames_per_token: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0: off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_window < 0:
            raise ValueError(f"repetition_window must be >= 0 (0: off), got {self.repetition_window}")

    def max_frames(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """Per-row frame budget from the number of target phonemes (B,) -> (B,) long."""
        budget = torch.ceil(n_tokens.to(torch.float64) * self.max_frames_per_token).long()
        return budget + self.max_frames_base

    def min_frames_for(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """Per-row frames before the end token is allowed, from the target phonemes (B,) -> (B,)."""
        floor = torch.floor(n_tokens.to(torch.float64) * self.min_frames_per_token).long()
        return floor.clamp(min=self.min_frames)

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """A generator on ``device`` seeded with ``seed``."""
        return torch.Generator(device=device).manual_seed(self.seed)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, V) -> (B, V) divided by the temperature (left as is for 0 = greedy)."""
    return logits if temperature in (0.0, 1.0) else logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keeps exactly the k largest logits per row, -inf elsewhere; k = 0 or k >= V: no-op."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    top = logits.topk(k, dim=-1)
    return torch.full_like(logits, -math.inf).scatter(-1, top.indices, top.values)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keeps the most likely tokens until their probability reaches p.

    The most likely token is always kept.
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens
    sorted_logits = sorted_logits.masked_fill(mass_before >= p, -math.inf)
    return torch.full_like(logits, -math.inf).scatter(-1, order, sorted_logits)


def draw(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from softmax(logits): (B, V) -> (B,)."""
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)


def repetition_ratio(tokens: torch.Tensor, history: torch.Tensor, window: int) -> torch.Tensor:
    """Share of the last ``window`` history steps equal to ``tokens`` (B,): returns (B,) float.

    The ratio is over the full window size even while the history is shorter, as in VALL-E 2.
    """
    recent = history[:, -window:]  # (B, <=window)
    return (recent == tokens[:, None]).sum(dim=-1).float() / window


def repetition_aware_fallback(
    tokens: torch.Tensor,
    full_logits: torch.Tensor,
    history: torch.Tensor,
    window: int,
    threshold: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """VALL-E 2's repetition-aware sampling.

    Args:
        tokens: (B,) tokens drawn with the filtered distribution.
        full_logits: (B, V) unfiltered logits to draw the replacement from.
        history: (B, t) previously generated tokens.
        window, threshold: see `SamplingOptions`.
        generator: random source.

    Returns:
        (B,) tokens, replaced where they repeat too often.
    """
    replacement = draw(full_logits, generator)  # always drawn: same random stream for every outcome
    repeats = repetition_ratio(tokens, history, window) > threshold
    return torch.where(repeats, replacement, tokens)


def sample_next(
    logits: torch.Tensor,
    history: torch.Tensor | None,
    options: SamplingOptions,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Picks the next token of every row.

    Args:
        logits: (B, V) next-token logits (any float dtype; computed in float32).
        history: (B, t) tokens generated so far, for repetition-aware sampling; None or
            t = 0: no history yet.
        options: temperature, top-k, top-p and repetition settings.
        generator: random source; fixes the result for a given seed.

    Returns:
        (B,) long token ids.
    """
    logits = logits.float()
    if options.temperature == 0.0:
        tokens = logits.argmax(dim=-1)
        full_logits = logits
    else:
        full_logits = apply_temperature(logits, options.temperature)
        filtered = top_p_filter(top_k_filter(full_logits, options.top_k), options.top_p)
        tokens = draw(filtered, generator)
    if options.repetition_window > 0 and history is not None and history.shape[1] > 0:
        tokens = repetition_aware_fallback(
            tokens, full_logits, history, options.repetition_window, options.repetition_threshold, generator
        )
    return tokens
