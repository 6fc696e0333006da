"""CosyVoice LM inference: batched zero-shot sampling of speech tokens with a KV cache.

The LM reads [sos, spk?, prompt text + target text, task, prompt speech tokens] and continues the
speech tokens until eos. Lengths are tied to the target text: eos is suppressed before
``min_token_text_ratio`` tokens per target text token, and a row stops after
``max_token_text_ratio`` of them (CosyVoice's rule).

Sampling is CosyVoice's repetition-aware sampling, built from `ttsframe.modules.sampling`'s
filters: a nucleus draw (top-p and top-k of the full distribution); when the drawn token already
fills ``tau_r`` or more of the last ``repetition_window`` generated tokens, a draw from the full
distribution instead (VALL-E 2's rule).
"""

from __future__ import annotations

import math
from typing import Iterator
from dataclasses import dataclass

import torch

from ttsframe.inference.mode import evaluating
from ttsframe.models.cosyvoice.lm import SpeechLM
from ttsframe.modules.sampling import apply_temperature, draw, repetition_aware_fallback, top_k_filter, top_p_filter


@dataclass(frozen=True)
class LMSamplingOptions:
    """How to pick the next speech token and when to stop.

    Attributes:
        temperature: logits are divided by it; 0 picks the most likely token.
        top_p: nucleus mass kept (of the full distribution); 1.0 keeps all.
        top_k: at most this many tokens kept; 0 keeps all.
        repetition_window: recent generated tokens that repetition-aware sampling looks at; 0: off.
        tau_r: fall back to the full distribution when the drawn token's share of the window
            reaches this ratio (CosyVoice: count >= window * tau_r).
        min_token_text_ratio: eos is suppressed before this many tokens per target text token.
        max_token_text_ratio: a row stops after this many tokens per target text token.
        seed: seeds the generator that generation creates.
    """

    temperature: float = 1.0
    top_p: float = 0.8
    top_k: int = 25
    repetition_window: int = 10
    tau_r: float = 0.1
    min_token_text_ratio: float = 2.0
    max_token_text_ratio: float = 20.0
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0 or self.top_k < 0 or self.repetition_window < 0:
            raise ValueError("temperature, top_k and repetition_window must be >= 0")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_token_text_ratio <= self.max_token_text_ratio or self.max_token_text_ratio <= 0:
            raise ValueError(f"need 0 <= min_token_text_ratio <= max_token_text_ratio, max > 0, got "
                             f"{self.min_token_text_ratio}, {self.max_token_text_ratio}")

    def length_bounds(self, n_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) target text tokens -> min tokens before eos (B,), max tokens (B,) >= 1, long."""
        n = n_text.to(torch.float64)
        return torch.floor(n * self.min_token_text_ratio).long(), torch.floor(n * self.max_token_text_ratio).long().clamp(min=1)

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.seed)


def sample_token(logits: torch.Tensor, history: torch.Tensor, options: LMSamplingOptions,
                 generator: torch.Generator | None) -> torch.Tensor:
    """CosyVoice's ras_sampling for every row: (B, V) logits, (B, t) generated so far -> (B,) ids."""
    logits = logits.float()
    if options.temperature == 0.0:
        full_logits, tokens = logits, logits.argmax(dim=-1)
    else:
        full_logits = apply_temperature(logits, options.temperature)
        tokens = draw(top_k_filter(top_p_filter(full_logits, options.top_p), options.top_k), generator)
    if options.repetition_window > 0 and history.shape[1] > 0:
        # sampling.py falls back when share > threshold; half a count below tau_r makes it share >= tau_r.
        threshold = options.tau_r - 0.5 / options.repetition_window
        tokens = repetition_aware_fallback(tokens, full_logits, history, options.repetition_window, threshold, generator)
    return tokens


def generate(
    model: SpeechLM,
    text: torch.Tensor,
    text_lengths: torch.Tensor,
    spk: torch.Tensor | None,
    prompt_speech: torch.Tensor,
    prompt_lengths: torch.Tensor,
    options: LMSamplingOptions,
    prompt_text_lengths: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Samples speech tokens until each row emits eos or reaches its maximum length.

    Rows run as one batch; a finished row keeps being fed (its outputs are discarded) until every
    row is done. Every step draws for every row, so the seed fixes the whole output.

    Args:
        model: the speech LM.
        text: (B, L) text ids (zero-shot: prompt text then target text), padded; text_lengths: (B,).
        spk: (B, spk_dim) speaker embeddings for an LM with ``spk_dim``, else None.
        prompt_speech: (B, P) speech tokens of the prompt, teacher-forced (P may be 0); prompt_lengths: (B,).
        options: sampling settings.
        prompt_text_lengths: (B,) prompt text tokens at the start of ``text``, not counted in the
            length bounds; None: 0.

    Returns:
        B tensors (T_i,) of generated speech tokens, prompt and eos excluded.
    """
    rows: list[list[int]] = [[] for _ in range(text.shape[0])]
    for step in token_steps(model, text, text_lengths, spk, prompt_speech, prompt_lengths, options,
                            prompt_text_lengths):
        for row, token in zip(rows, step.tolist()):
            if token is not None:
                row.append(token)
    return [torch.tensor(row, dtype=torch.long, device=text.device) for row in rows]


def token_steps(
    model: SpeechLM,
    text: torch.Tensor,
    text_lengths: torch.Tensor,
    spk: torch.Tensor | None,
    prompt_speech: torch.Tensor,
    prompt_lengths: torch.Tensor,
    options: LMSamplingOptions,
    prompt_text_lengths: torch.Tensor | None = None,
) -> Iterator["StepTokens"]:
    """`generate` one decoding step at a time: yields each step's new token of every row (None
    for rows that have ended), so a streaming caller can act while the LM decodes."""
    config, device = model.config, text.device
    text_lengths, prompt_lengths = text_lengths.to(device).long(), prompt_lengths.to(device).long()
    n_target = text_lengths if prompt_text_lengths is None else text_lengths - prompt_text_lengths.to(device)
    min_tokens, max_tokens = (bound.to(device) for bound in options.length_bounds(n_target))
    n_steps, batch = int(max_tokens.max()), text.shape[0]
    generator = options.generator(device)
    with evaluating(model):
        prefill_length = int((text_lengths + prompt_lengths).max()) + 2 + int(config.spk_dim > 0)
        cache = model.new_cache(max_length=prefill_length + n_steps)
        logits, positions = model.prefill(text, text_lengths, spk, prompt_speech, prompt_lengths, cache)  # (B, V)
        generated = torch.full((batch, n_steps), config.eos, dtype=torch.long, device=device)  # (B, steps)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        for step in range(n_steps):
            logits[:, config.eos] = logits[:, config.eos].masked_fill(step < min_tokens, -math.inf)
            if config.never_sampled:  # fill asks for more text: bistream input only
                logits[:, list(config.never_sampled)] = -math.inf
            next_ids = sample_token(logits, generated[:, :step], options, generator)  # (B,)
            ends_here = (next_ids == config.eos) & ~finished
            yield StepTokens(next_ids, ~finished & ~ends_here)
            finished = finished | ends_here | (step + 1 >= max_tokens)
            generated[:, step] = next_ids
            if bool(finished.all()):
                break
            logits = model.decode_step(next_ids.clamp(max=config.n_speech - 1), positions + step, cache)


@dataclass(frozen=True)
class StepTokens:
    """One decoding step: `ids` (B,) drawn, `live` (B,) bool where the id is a speech token of
    a row still decoding (False: the row emitted eos now or ended before)."""

    ids: torch.Tensor
    live: torch.Tensor

    def tolist(self) -> list[int | None]:
        return [int(i) if keep else None for i, keep in zip(self.ids.tolist(), self.live.tolist())]
