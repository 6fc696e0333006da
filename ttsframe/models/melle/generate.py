"""MELLE inference: batched autoregressive generation of mel groups with a KV cache.

Zero-shot continuation as in the paper: the model reads [prompt phonemes + target phonemes ;
BOS, prompt mel groups] and continues the mel, r frames per step, until the stop probability
passes a threshold or the row spends its frame budget (tied to its number of target phonemes).
Each step samples the latent z = mu + temperature * sigma * eps (temperature 0: z = mu); the
post-net then refines the generated frames, and only the target part comes back, as log-mel.

With a phoneme pointer (`MelleConfig.phoneme_pointer`; `ttsframe.modules.phoneme_pointer`) the
prompt's groups are aligned to the prompt's phonemes by the model's aligner, the target starts at the
first target phoneme, and after each group the pointer moves on by the advance head's expected move
(summed with its fraction, floored to a phoneme, never past the text); a row also ends once the
pointer passes its last phoneme. A model with a duration plan (`MelleConfig.duration_plan`) follows
instead the track its duration predictor plans for the target before the first step (each phoneme's
predicted steps times the prompt's pace), and a row also ends where that plan does.

The acoustic prompt is cut to a whole number of groups (its last T mod r frames are dropped):
training never feeds a partly padded group as input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ttsframe.inference.mode import evaluating
from ttsframe.models.melle.latent import frames_to_groups, groups_to_frames
from ttsframe.models.melle.model import Melle, steps_for
from ttsframe.modules.packing import lengths_to_mask, pack_segments
from ttsframe.modules.length_budget import frame_budget, frame_floor
from ttsframe.modules.phoneme_pointer import begin_walk, end_rows, pointer_inputs, start_pointers


@dataclass(frozen=True)
class MelleSamplingOptions:
    """How to sample the latents and when to stop.

    Attributes:
        temperature: scales sigma in z = mu + temperature * sigma * eps; 0 uses mu (no noise).
        stop_threshold: a row ends after the step whose calibrated stop probability (the BCE's
            pos_weight undone: `ttsframe.modules.stop_head`) exceeds this. The probability that *this*
            step is the last is spread over the steps around the end, so the threshold is low:
            measured on a memorised run (`benchmarks/memorize.py melle`), 0.01 gave lengths 1.11x the
            recordings' (median), 0.1 1.19x, 0.5 3.76x (it never stopped).
        max_frames_per_token: frame budget per target phoneme (the hard length limit).
        min_frames: no stop is taken before this many frames exist...
        min_frames_per_token: ...or this many frames per target phoneme, whichever is more (0:
            off): a floor against an undertrained stop head ending at once.
        seed: seeds the generator that generation creates (eps draws).
        follow_plan: a model with a duration plan follows it (False: the advance head's moves).
        prompt_pace: scale the plan's durations by the prompt's pace (its aligned steps over the steps
            predicted for its phonemes, within `duration_plan.RATE_RANGE`). Off by default: on a memorized
            MELLE it raised WER from 0.418 to 0.644 (16 rows; a prompt cut to 3 s keeps a share of its
            transcript proportional to time, so its pace is measured against phonemes it may not say).
    """

    temperature: float = 1.0
    stop_threshold: float = 0.01
    max_frames_per_token: float = 20.0
    min_frames: int = 1
    min_frames_per_token: float = 0.0
    seed: int = 0
    follow_plan: bool = True
    prompt_pace: bool = False

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.stop_threshold < 1.0:
            raise ValueError(f"stop_threshold must be in (0, 1), got {self.stop_threshold}")
        if self.max_frames_per_token <= 0:
            raise ValueError(f"max_frames_per_token must be > 0, got {self.max_frames_per_token}")

    def max_frames(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """Per-row frame budget from the number of target phonemes, (B,) -> (B,) long, >= 1."""
        return frame_budget(n_tokens, self.max_frames_per_token)

    def min_frames_for(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """Per-row frames before a stop is allowed, from the target phonemes (B,) -> (B,) long."""
        return frame_floor(n_tokens, self.min_frames_per_token, self.min_frames)

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.seed)


def generate_mel(
    model: Melle,
    tokens: torch.Tensor,
    token_lengths: torch.Tensor,
    prompt_mel: torch.Tensor,
    prompt_lengths: torch.Tensor,
    options: MelleSamplingOptions,
    max_frames: torch.Tensor | None = None,
    use_cache: bool = True,
    min_frames: torch.Tensor | None = None,
    prompt_text_lengths: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Generates mel frames until each row stops or spends its budget.

    Rows run as one batch; a finished row keeps being fed (its outputs are discarded) until
    every row is done. Every step draws eps for every row, so the seed fixes the output.

    Args:
        model: the MELLE model.
        tokens: (B, L) phonemes (zero-shot: prompt text then target text), padded.
        token_lengths: (B,).
        prompt_mel: (B, Tp, M) log-mel of the acoustic prompt (Tp may be 0), padded.
        prompt_lengths: (B,) real prompt frames.
        options: sampling settings.
        max_frames: (B,) frame budget per row; default ``options.max_frames(token_lengths)``
            (pass the target phonemes' budget when tokens include the prompt text).
        use_cache: False recomputes the whole prefix at every step (the reference the cached
            path must match; quadratic cost).
        min_frames: (B,) frames before a stop is allowed; default ``options.min_frames_for(token_lengths)``.
        prompt_text_lengths: (B,) phonemes of ``tokens`` that the prompt speaks (default 0). A model with
            a phoneme pointer aligns the prompt's groups to them and starts the target at the next one.

    Returns:
        B tensors (T_i, M): post-net refined log-mel of the generated frames, target only.
    """
    r, device = model.config.reduction_factor, tokens.device
    token_lengths, prompt_lengths = token_lengths.to(device), prompt_lengths.to(device)
    max_frames = (options.max_frames(token_lengths) if max_frames is None else max_frames).to(device).long()
    max_steps = steps_for(max_frames, r)  # (B,)
    min_frames = (options.min_frames_for(token_lengths) if min_frames is None else min_frames).to(device).long()
    n_steps, min_steps = int(max_steps.max()), torch.div(min_frames + r - 1, r, rounding_mode="floor")  # (B,)
    generator = options.generator(device)
    with evaluating(model):
        prompt_groups, prompt_steps = _prompt_groups(model, prompt_mel.to(device), prompt_lengths)
        cache = None
        if use_cache:
            cache = model.transformer.new_cache(max_length=int((token_lengths + prompt_steps + 1).max()) + n_steps)
        pointer, track = _start_pointers(model, tokens, token_lengths, prompt_mel.to(device), prompt_steps,
                                         prompt_text_lengths)  # (B,), (B, G + 1) or None
        walk = table = None
        if track is not None:  # the advance head's walk, or the duration plan's track
            table = model.pointer_table(tokens, token_lengths)  # (B, L, D), once: the text does not change
            walk, track = begin_walk(pointer, track, prompt_steps, tokens, token_lengths, n_steps + 1,
                                     model.duration_predictor if options.follow_plan else None,
                                     prompt_text_lengths if options.prompt_pace else None)
            # track[b, prompt_steps[b] + 1 + k]: the pointer of generated input k
            track = torch.cat([track, track.new_zeros(track.shape[0], n_steps)], dim=1)  # (B, G + 1 + steps)
        hidden = model.prefill(tokens, token_lengths, prompt_groups, prompt_steps, cache, track)  # (B, D)
        batch = tokens.shape[0]
        generated = hidden.new_zeros(batch, n_steps, model.config.group_dim)  # (B, steps, rM)
        steps = max_steps.clone()  # rows that never stop keep their whole budget
        finished = torch.zeros_like(steps, dtype=torch.bool)
        for step in range(n_steps):
            noise = torch.randn(batch, generated.shape[2], generator=generator, device=device) * options.temperature
            group, stop_logit = model.predict_step(hidden, noise)  # (B, rM), (B,)
            generated[:, step] = group
            stops = (model.stop_head.stop_probability(stop_logit) > options.stop_threshold) & ~finished & (step + 1 >= min_steps)
            steps = torch.where(stops, step + 1, steps)
            finished = finished | stops | (step + 1 >= max_steps)
            if bool(finished.all()):
                break
            pointer_input = None
            if walk is not None:  # the pointer moves on, never past the text; past it (or the plan) ends the row
                pointer, _, past = walk.next(step + 1, lambda: model.advance_logits(hidden, group))
                pointer_input = pointer_inputs(table, pointer[:, None])[:, 0]  # (B, D)
                track = track.scatter(1, (prompt_steps + 1 + step)[:, None], pointer[:, None])
                steps, finished = end_rows(past, finished, steps, step + 1, step + 1 >= min_steps)
                if bool(finished.all()):
                    break
            if use_cache:
                hidden = model.decode_step(group, prompt_steps + 1 + step, cache, pointer_input)
            else:
                known = step + 1
                prefix = pack_segments([prompt_groups, generated[:, :known]],
                                       [prompt_steps, torch.full_like(prompt_steps, known)]).values
                hidden = model.prefill(tokens, token_lengths, prefix, prompt_steps + known, pointers=track)
        frame_lengths = torch.minimum(steps * r, max_frames)  # (B,)
        frames = groups_to_frames(generated[:, : int(steps.max())], r)  # (B, T, M)
        mels = model.denormalize(model.refine(frames, frame_lengths))
    return [row[:n].clone() for row, n in zip(mels.clone(), frame_lengths.tolist())]


def _start_pointers(model: Melle, tokens, token_lengths, prompt_mel, prompt_steps, prompt_text_lengths):
    """A phoneme pointer's start: (B,) the first target phoneme, and (B, G + 1) the pointers of the
    prefill's inputs (the aligner's phoneme for each whole prompt group, then the start); None, None
    for a model without a pointer. prompt_mel (B, Tp, M) log-mel; prompt_steps (B,) whole groups."""
    if model.pointer_embedding is None:
        return None, None
    r = model.config.reduction_factor

    def align(spoken: torch.Tensor, width: int) -> torch.Tensor:
        lengths = prompt_steps * r  # the whole groups' frames
        mask = lengths_to_mask(lengths, prompt_mel.shape[1])[..., None]  # (B, Tp, 1)
        frames = model.normalize(prompt_mel.float()).masked_fill(~mask, 0.0)  # (B, Tp, M)
        return model.align(tokens, spoken, frames, lengths.clamp(min=1), width)[1]  # (B, G)

    return start_pointers(token_lengths, prompt_text_lengths, prompt_steps, align)


def _prompt_groups(model: Melle, prompt_mel: torch.Tensor, prompt_lengths: torch.Tensor):
    """(B, Tp, M) log-mel -> normalised whole groups (B, G, r * M) and their counts (B,)."""
    r = model.config.reduction_factor
    steps = torch.div(prompt_lengths.long(), r, rounding_mode="floor")  # drop a partial last group
    frames = prompt_mel.shape[1]
    mel = model.normalize(prompt_mel.float()).masked_fill(~lengths_to_mask(steps * r, frames)[..., None], 0.0)
    groups = frames_to_groups(mel, r)[:, : int(steps.max()) if len(steps) else 0]
    return groups, steps


def synthesize_mel(
    model: Melle,
    text_tokens: Sequence[torch.Tensor],
    prompt_tokens: Sequence[torch.Tensor],
    prompt_mels: Sequence[torch.Tensor],
    options: MelleSamplingOptions,
    use_cache: bool = True,
) -> list[torch.Tensor]:
    """Zero-shot synthesis of log-mel for a batch of items.

    Item i reads phonemes ``prompt_tokens[i] + text_tokens[i]`` and continues the acoustic
    prompt ``prompt_mels[i]``; its frame budget comes from the target phoneme count only.

    Args:
        model: the MELLE model.
        text_tokens: per item (L_i,) target phonemes.
        prompt_tokens: per item (Lp_i,) phonemes of the prompt's transcript.
        prompt_mels: per item (Tp_i, M) log-mel of the prompt audio.
        options: sampling settings.

    Returns:
        Per item (T_i, M) log-mel of the target speech only.
    """
    if not len(text_tokens) == len(prompt_tokens) == len(prompt_mels):
        raise ValueError("text_tokens, prompt_tokens and prompt_mels must have one entry per item")
    device = next(model.parameters()).device
    tokens, token_lengths = _pad_stack([torch.cat([p, t]).long() for p, t in zip(prompt_tokens, text_tokens)], device)
    prompts, prompt_lengths = _pad_stack([m.float().T for m in prompt_mels], device)  # (B, M, Tp)
    target_lengths = torch.tensor([len(t) for t in text_tokens], device=device)
    prompt_text_lengths = torch.tensor([len(p) for p in prompt_tokens], device=device)
    return generate_mel(model, tokens, token_lengths, prompts.transpose(1, 2), prompt_lengths, options,
                        options.max_frames(target_lengths), use_cache, options.min_frames_for(target_lengths),
                        prompt_text_lengths)


def _pad_stack(items: Sequence[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads tensors on their last axis with 0 and stacks: -> (B, ..., T_max), lengths (B,)."""
    lengths = torch.tensor([item.shape[-1] for item in items], dtype=torch.long, device=device)
    longest = int(lengths.max()) if len(items) else 0
    return torch.stack([F.pad(item.to(device), (0, longest - item.shape[-1])) for item in items]), lengths
