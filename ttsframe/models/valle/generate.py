"""VALL-E inference: AR sampling of codebook 0 with a KV cache, then greedy NAR stages.

Zero-shot continuation as in the paper: the AR reads [prompt phonemes + target phonemes ;
BOS, prompt codebook-0 codes] and continues the codes until EOS; the NAR then fills
codebooks 1..K-1 of the target frames, one pass per codebook, seeing the prompt's full
codes. Only the target frames are returned.

With a phoneme pointer (`ValleConfig.phoneme_pointer`; `ttsframe.modules.phoneme_pointer`) the AR's
aligner aligns the prompt's codes to the prompt's phonemes, the target starts at the first target
phoneme, each fed code carries the embedding of the pointer's phoneme, and after each frame the
pointer moves on by the advance head's expected move (summed with its fraction, floored to a
phoneme, never past the text); a row also ends once the pointer passes its last phoneme.
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ttsframe.inference.mode import evaluating
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.modules.packing import lengths_to_mask, pack_segments, take_segment
from ttsframe.modules.phoneme_pointer import PointerWalk, end_rows, start_pointers
from ttsframe.modules.sampling import SamplingOptions, sample_next


def generate_ar(
    ar: ValleAR,
    tokens: torch.Tensor,
    token_lengths: torch.Tensor,
    prompt_codes: torch.Tensor,
    prompt_lengths: torch.Tensor,
    options: SamplingOptions,
    max_frames: torch.Tensor | None = None,
    min_frames: torch.Tensor | None = None,
    prompt_text_lengths: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Samples first-codebook codes until each row emits EOS or spends its budget.

    Rows run as one batch with a preallocated KV cache; a finished row keeps being fed
    (its outputs are discarded) until every row is done.

    Args:
        ar: the AR model.
        tokens: (B, L) phonemes (for zero-shot: prompt text then target text), padded.
        token_lengths: (B,).
        prompt_codes: (B, Tp) first-codebook codes of the acoustic prompt (Tp may be 0).
        prompt_lengths: (B,).
        options: sampling settings; the seed fixes the output.
        max_frames: (B,) frame budget per row; default ``options.max_frames(token_lengths)``
            (pass the target phoneme counts' budget when tokens include the prompt text).
        min_frames: (B,) frames before EOS is allowed; default ``options.min_frames_for(token_lengths)``.
        prompt_text_lengths: (B,) phonemes of ``tokens`` that the prompt speaks (default 0). An AR with
            a phoneme pointer aligns the prompt's codes to them and starts the target at the next one
            (and also ends a row once its pointer passes the text, not before ``min_frames``).

    Returns:
        B tensors (T_i,) of generated codes, EOS excluded.
    """
    eos = ar.config.audio_eos
    device = tokens.device
    token_lengths, prompt_lengths = token_lengths.to(device), prompt_lengths.to(device)
    max_frames = (options.max_frames(token_lengths) if max_frames is None else max_frames).to(device).long()
    n_steps = int(max_frames.max())
    min_frames = (options.min_frames_for(token_lengths) if min_frames is None else min_frames).to(device).long()
    generator = options.generator(device)
    with evaluating(ar):
        prefill_length = int((token_lengths + prompt_lengths + 1).max())
        cache = ar.transformer.new_cache(max_length=prefill_length + n_steps)
        pointer, track = _start_pointers(ar, tokens, token_lengths, prompt_codes, prompt_lengths,
                                         prompt_text_lengths)  # (B,), (B, Tp + 1) or None
        hidden, positions = ar.prefill(tokens, token_lengths, prompt_codes, prompt_lengths, cache, track)  # (B, D)
        walk = None if pointer is None else PointerWalk(pointer, tokens, token_lengths)
        generated = torch.full((tokens.shape[0], n_steps), eos, dtype=torch.long, device=device)  # (B, steps)
        lengths = max_frames.clone()  # (B,) rows that never emit EOS keep their whole budget
        finished = torch.zeros_like(lengths, dtype=torch.bool)
        for step in range(n_steps):
            logits = ar.head(hidden)  # (B, V)
            logits[:, eos] = logits[:, eos].masked_fill(step < min_frames, -math.inf)
            next_ids = sample_next(logits, generated[:, :step], options, generator)  # (B,)
            ends_here = (next_ids == eos) & ~finished
            lengths = torch.where(ends_here, step, lengths)
            finished = finished | ends_here | (step + 1 >= max_frames)
            generated[:, step] = next_ids
            if bool(finished.all()):
                break
            phonemes = None
            if walk is not None:  # the advance head (it sees the code it moves after) moves the pointer on
                _, phonemes, past = walk.next(step + 1, lambda: ar.advance_logits(hidden, next_ids))
                lengths, finished = end_rows(past, finished, lengths, step + 1, step + 1 >= min_frames)
                if bool(finished.all()):
                    break
            hidden = ar.decode_step(next_ids, positions + step, cache, phonemes)
    return [row[:length].clone() for row, length in zip(generated, lengths.tolist())]


def _start_pointers(ar: ValleAR, tokens, token_lengths, prompt_codes, prompt_lengths, prompt_text_lengths):
    """A phoneme pointer's start: (B,) the first target phoneme, and (B, Tp + 1) the pointers of the
    prefill's inputs (the aligner's phoneme of each prompt frame, then the start); None, None for an
    AR without a pointer. prompt_codes (B, Tp) codebook 0; prompt_lengths (B,)."""
    if ar.pointer_embedding is None:
        return None, None

    def align(spoken: torch.Tensor, width: int) -> torch.Tensor:
        codes = prompt_codes[:, :width]
        return ar.align(tokens, spoken, codes, prompt_lengths.clamp(min=1))[1][:, :width]  # (B, Tp)

    start, pointers = start_pointers(token_lengths, prompt_text_lengths, prompt_lengths, align)  # (B,), (B, W + 1)
    return start, F.pad(pointers, (0, prompt_codes.shape[1] + 1 - pointers.shape[1]))  # (B, Tp + 1); pads unused


def generate_nar(
    nar: ValleNAR,
    tokens: torch.Tensor,
    token_lengths: torch.Tensor,
    prompt_codes: torch.Tensor,
    prompt_lengths: torch.Tensor,
    codes: torch.Tensor,
    frame_lengths: torch.Tensor,
) -> torch.Tensor:
    """Fills codebooks 1..K-1 of the target, greedily, one NAR pass per codebook.

    Args:
        nar: the NAR model.
        tokens: (B, L) phonemes (prompt text then target text), padded; token_lengths: (B,).
        prompt_codes: (B, K, Tp) all codebooks of the acoustic prompt; prompt_lengths: (B,).
        codes: (B, T) first-codebook codes of the target (from the AR); frame_lengths: (B,).

    Returns:
        (B, K, T) target codes, codebook 0 as given; zeros past each row's length.
    """
    batch, n_codebooks, _ = prompt_codes.shape
    n_frames = codes.shape[1]
    target = codes.new_zeros(batch, n_codebooks, n_frames)
    target[:, 0] = codes
    with evaluating(nar):
        # One audio segment [prompt ; target] per row, packed as (B, S, K) then back to (B, K, S).
        packed = pack_segments(
            [prompt_codes.transpose(1, 2), target.transpose(1, 2)], [prompt_lengths, frame_lengths]
        )
        audio = packed.values.transpose(1, 2).contiguous()  # (B, K, S)
        total_lengths = prompt_lengths + frame_lengths
        for stage in range(1, n_codebooks):
            stages = torch.full_like(prompt_lengths, stage)
            prediction = nar(tokens, token_lengths, audio, total_lengths, prompt_lengths, stages)
            best = prediction.logits.argmax(dim=-1)  # (B, S)
            audio[:, stage] = torch.where(prediction.mask, best, audio[:, stage])
        target = take_segment(audio.transpose(1, 2), prompt_lengths.long(), n_frames).transpose(1, 2)  # (B, K, T)
        target = target.masked_fill(~lengths_to_mask(frame_lengths, n_frames)[:, None], 0)
    return target.clone()  # cloned outside inference mode: an ordinary tensor


def synthesize_codes(
    ar: ValleAR,
    nar: ValleNAR,
    text_tokens: Sequence[torch.Tensor],
    prompt_tokens: Sequence[torch.Tensor],
    prompt_codes: Sequence[torch.Tensor],
    options: SamplingOptions,
    timer=None,
) -> list[torch.Tensor]:
    """Zero-shot synthesis of codec codes for a batch of items.

    Item i reads phonemes ``prompt_tokens[i] + text_tokens[i]`` (concatenated as given) and
    continues the acoustic prompt ``prompt_codes[i]``; its frame budget comes from the
    target phoneme count only.

    Args:
        ar, nar: the two models, on the same device.
        text_tokens: per item (L_i,) target phonemes.
        prompt_tokens: per item (Lp_i,) phonemes of the prompt's transcript.
        prompt_codes: per item (K, Tp_i) codes of the prompt audio.
        options: AR sampling settings.
        timer: optional `timer(part)` context manager factory; times the "ar" and "nar" parts.

    Returns:
        Per item (K, T_i) codes of the target speech only.
    """
    if not len(text_tokens) == len(prompt_tokens) == len(prompt_codes):
        raise ValueError("text_tokens, prompt_tokens and prompt_codes must have one entry per item")
    device = next(ar.parameters()).device
    tokens, token_lengths = _pad_stack([torch.cat([p, t]) for p, t in zip(prompt_tokens, text_tokens)], device)
    prompts, prompt_lengths = _pad_stack(list(prompt_codes), device)  # (B, K, Tp)
    target_lengths = torch.tensor([len(t) for t in text_tokens], device=device)
    prompt_text_lengths = torch.tensor([len(p) for p in prompt_tokens], device=device)
    max_frames = options.max_frames(target_lengths)

    timer = timer or (lambda part: contextlib.nullcontext())
    with timer("ar"):
        codes1 = generate_ar(ar, tokens, token_lengths, prompts[:, 0], prompt_lengths, options, max_frames,
                             options.min_frames_for(target_lengths), prompt_text_lengths)
    codes1, frame_lengths = _pad_stack(codes1, device)  # (B, T)
    if codes1.shape[1] == 0:
        return [prompts.new_zeros(prompts.shape[1], 0) for _ in text_tokens]
    with timer("nar"):
        codes = generate_nar(nar, tokens, token_lengths, prompts, prompt_lengths, codes1, frame_lengths)
    return [row[:, :length] for row, length in zip(codes, frame_lengths.tolist())]


def _pad_stack(items: Sequence[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads tensors on their last axis with 0 and stacks: -> (B, ..., T_max), lengths (B,)."""
    lengths = torch.tensor([item.shape[-1] for item in items], dtype=torch.long, device=device)
    longest = int(lengths.max()) if len(items) else 0
    padded = [F.pad(item.to(device).long(), (0, longest - item.shape[-1])) for item in items]
    return torch.stack(padded), lengths
