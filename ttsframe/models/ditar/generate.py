"""DiTAR inference: batched patch-by-patch generation, the LM with a KV cache, LocDiT per patch.

Zero-shot continuation: the LM reads [prompt text + target text ; BOS, prompt patches] once
(prefill); then, per patch, LocDiT solves the reverse ODE (`diffusion.sample`: ``nfe`` calls,
classifier-free guidance, temperature as the time noise enters) given the LM's h_i and the last
K patches (the prompt's at first), the stop head reads the same h_i, and the LM runs once on
the new patch's encoding. A row ends after the patch whose stop probability passes the threshold
(not before its minimum), or when it spends its frame budget (tied to its number of target
phonemes); finished rows keep being fed until every row is done, their outputs discarded.

With a phoneme pointer (`DiTARConfig.phoneme_pointer`) the prompt's patches are aligned to the
prompt's phonemes by the model's aligner, the target starts at the first target phoneme, and after
each patch the pointer moves on by the advance head's expected move (summed with its fraction,
floored to a phoneme); a row also ends once the pointer passes its last phoneme. A model with a
duration plan (`DiTARConfig.duration_plan`) follows instead the track its duration predictor plans
for the target before the first patch (scaled to the prompt's pace), and a row also ends where it does.

The acoustic prompt is cut to a whole number of patches (its last T mod P frames are dropped):
training never feeds a partly padded patch as an input or as history. Only the target part
comes back, as log-mel, in whole patches cut to the frame budget. `synthesize_mel` is the
synthesizer's entry: per-item prompts and texts, the budget from the target text alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ttsframe.inference.mode import evaluating
from ttsframe.models.ditar.diffusion import SOLVERS, guided, sample
from ttsframe.models.ditar.model import DiTAR
from ttsframe.models.ditar.patches import frames_to_patches, last_patches, patches_to_frames
from ttsframe.modules.packing import pad_rows
from ttsframe.modules.phoneme_pointer import begin_walk, end_rows, pointer_inputs, start_pointers
from ttsframe.modules.length_budget import frame_budget, frame_floor


@dataclass(frozen=True)
class DiTARSamplingOptions:
    """How to sample each patch and when to stop.

    Attributes:
        nfe: LocDiT evaluations per patch (ODE steps; each is one batched call, doubled in rows
            with guidance); 0 takes a regression prior's mu alone (models with ``regression_prior``).
        cfg_scale: w in (1 + w) v_cond - w v_uncond on LocDiT; 0 is off. Default 1 (a guidance
            scale of 2 in the v_uncond + s (v_cond - v_uncond) convention): our choice.
        temperature: tau in [0, 1], the diffusion time at which noise enters the reverse ODE;
            1 is ordinary sampling from Gaussian noise, 0 is deterministic (`diffusion.sample`).
        solver: "ddim" or "euler".
        stop_threshold: a row ends after the patch whose calibrated stop probability (the BCE's
            pos_weight undone: `ttsframe.modules.stop_head`) exceeds this. Low, as MELLE's (see
            `MelleSamplingOptions`): the last-patch probability is spread over the patches around
            the end. 0.05 = 1 / (1 + 20) is where the uncalibrated 0.5 stood at pos_weight 20.
        max_frames_per_token: frame budget per target phoneme (the hard length limit).
        min_frames: no stop is taken before this many frames exist...
        min_frames_per_token: ...or this many frames per target phoneme, whichever is more (0: off).
        seed: seeds the generator that generation creates (the noise of every patch).
        follow_plan: a model with a duration plan follows it (False: the advance head's moves).
        prompt_pace: scale the plan's durations by the prompt's pace (its aligned steps over the steps
            predicted for its phonemes, within `duration_plan.RATE_RANGE`). Off by default: on a memorized
            MELLE it raised WER from 0.418 to 0.644 (16 rows; a prompt cut to 3 s keeps a share of its
            transcript proportional to time, so its pace is measured against phonemes it may not say).
    """

    nfe: int = 10
    cfg_scale: float = 1.0
    temperature: float = 1.0
    solver: str = "ddim"
    stop_threshold: float = 0.05
    max_frames_per_token: float = 20.0
    min_frames: int = 1
    min_frames_per_token: float = 0.0
    seed: int = 0
    follow_plan: bool = True
    prompt_pace: bool = False

    def __post_init__(self):
        if self.nfe < 0:
            raise ValueError(f"nfe must be >= 0 (0: a regression prior alone), got {self.nfe}")
        if self.cfg_scale < 0:
            raise ValueError(f"cfg_scale must be >= 0, got {self.cfg_scale}")
        if not 0.0 <= self.temperature <= 1.0:
            raise ValueError(f"temperature must be in [0, 1], got {self.temperature}")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; valid: {', '.join(SOLVERS)}")
        if not 0.0 < self.stop_threshold < 1.0:
            raise ValueError(f"stop_threshold must be in (0, 1), got {self.stop_threshold}")
        if self.max_frames_per_token <= 0:
            raise ValueError(f"max_frames_per_token must be > 0, got {self.max_frames_per_token}")
        if self.min_frames < 1 or self.min_frames_per_token < 0:
            raise ValueError(f"min_frames must be >= 1 and min_frames_per_token >= 0, "
                             f"got {self.min_frames}, {self.min_frames_per_token}")

    def max_frames(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """Per-row frame budget from the number of target phonemes, (B,) -> (B,) long, >= 1."""
        return frame_budget(n_tokens, self.max_frames_per_token)

    def min_frames_for(self, n_tokens: torch.Tensor) -> torch.Tensor:
        """Per-row frames before a stop is allowed, from the target phonemes (B,) -> (B,) long."""
        return frame_floor(n_tokens, self.min_frames_per_token, self.min_frames)

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.seed)


def sample_patch(
    model: DiTAR,
    hidden: torch.Tensor,
    history: torch.Tensor,
    history_mask: torch.Tensor,
    options: DiTARSamplingOptions,
    generator: torch.Generator,
) -> torch.Tensor:
    """One patch per row from LocDiT's reverse ODE, guided against h_i = 0; with a regression
    prior, mu_i plus the sampled residual (``options.nfe == 0``: mu_i alone).

    Args:
        hidden: (B, d) the LM's h_i; history: (B, K, P, D) with history_mask (B, K).

    Returns:
        (B, P, D) the sampled patches (model frame space).
    """
    prior = model.prior(hidden)  # (B, P, D) or None
    if not options.nfe:
        if prior is None:
            raise ValueError("nfe=0 (the regression prior alone) needs a model with regression_prior")
        return prior
    rows, w = hidden.shape[0], options.cfg_scale
    if w:  # conditional rows, then the unconditional twins: one LocDiT call per ODE step
        cond = torch.cat([hidden, torch.zeros_like(hidden)])  # (2B, d)
        history, history_mask = torch.cat([history, history]), torch.cat([history_mask, history_mask])
    else:
        cond = hidden

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not w:
            return model.locdit(x, t, cond, history, history_mask)
        v_cond, v_uncond = model.locdit(x.repeat(2, 1, 1), t.repeat(2), cond, history, history_mask).chunk(2)
        return guided(v_cond, v_uncond, w)

    shape = (rows, model.config.patch_size, model.representation.dim)
    noise = torch.randn(shape, generator=generator, device=hidden.device).to(hidden.dtype)
    patch = sample(velocity, noise, options.nfe, options.solver, options.temperature)
    return patch if prior is None else prior + patch


def generate(
    model: DiTAR,
    text: torch.Tensor,
    text_lengths: torch.Tensor,
    prompt_mel: torch.Tensor,
    prompt_lengths: torch.Tensor,
    options: DiTARSamplingOptions,
    max_frames: torch.Tensor | None = None,
    min_frames: torch.Tensor | None = None,
    prompt_text_lengths: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Generates patches until each row stops or spends its budget.

    Every step draws noise for every row, so the seed fixes the output.

    Args:
        model: the DiTAR model.
        text: (B, L) phonemes (zero-shot: prompt text then target text), padded; text_lengths: (B,).
        prompt_mel: (B, Tp, M) log-mel of the acoustic prompt (Tp may be 0), padded.
        prompt_lengths: (B,) real prompt frames.
        options: sampling settings.
        max_frames: (B,) frame budget per row; default ``options.max_frames(text_lengths)`` (pass
            the target phonemes' budget when the text includes the prompt's).
        min_frames: (B,) frames before a stop is allowed; default ``options.min_frames_for(text_lengths)``.
        prompt_text_lengths: (B,) phonemes of ``text`` that the prompt speaks (default 0). A model with
            a phoneme pointer aligns the prompt's patches to them and starts the target at the next one.

    Returns:
        B tensors (T_i, M): log-mel of the generated frames, target only.
    """
    patch_size, device = model.config.patch_size, text.device
    text_lengths = text_lengths.to(device)
    max_frames = (options.max_frames(text_lengths) if max_frames is None else max_frames).to(device).long()
    min_frames = (options.min_frames_for(text_lengths) if min_frames is None else min_frames).to(device).long()
    max_steps = torch.div(max_frames + patch_size - 1, patch_size, rounding_mode="floor")  # (B,)
    min_steps = torch.div(min_frames + patch_size - 1, patch_size, rounding_mode="floor")  # (B,)
    n_steps, batch, generator = int(max_steps.max()), text.shape[0], options.generator(device)
    with evaluating(model):
        prompt, n_prompt = _prompt_patches(model, prompt_mel.to(device), prompt_lengths.to(device))
        cache = model.lm.new_cache(max_length=int((text_lengths + n_prompt + 1).max()) + n_steps)
        pointer, pointers = _start_pointers(model, text, text_lengths, prompt_mel.to(device), prompt_lengths.to(device),
                                            n_prompt, prompt_text_lengths)  # (B,), (B, G + 1) or None
        walk = table = None
        if pointers is not None:  # the advance head's walk, or the duration plan's track
            table = model.pointer_table(text, text_lengths)  # (B, L, d), once: the text does not change
            walk, pointers = begin_walk(pointer, pointers, n_prompt, text, text_lengths, n_steps + 1,
                                        model.duration_predictor if options.follow_plan else None,
                                        prompt_text_lengths if options.prompt_pace else None)
        hidden = model.prefill(text, text_lengths, prompt, n_prompt, cache, pointers)  # (B, d)
        history, history_mask = last_patches(prompt, n_prompt, model.config.history)  # (B, K, P, D), (B, K)
        generated = prompt.new_zeros(batch, n_steps, *prompt.shape[2:])  # (B, steps, P, D)
        steps = max_steps.clone()  # rows that never stop keep their whole budget
        finished = torch.zeros_like(steps, dtype=torch.bool)
        for step in range(n_steps):
            patch = sample_patch(model, hidden, history, history_mask, options, generator)  # (B, P, D)
            generated[:, step] = patch
            stops = (model.stop_probability(hidden) > options.stop_threshold) & ~finished
            stops = stops & (step + 1 >= min_steps)
            steps = torch.where(stops, step + 1, steps)
            finished = finished | stops | (step + 1 >= max_steps)
            if bool(finished.all()):
                break
            if history.shape[1]:
                history = torch.cat([history[:, 1:], patch[:, None]], dim=1)
                history_mask = torch.cat([history_mask[:, 1:], torch.ones_like(history_mask[:, :1])], dim=1)
            pointer_input = None
            if walk is not None:  # the pointer moves on, never past the text; past it (or the plan) ends the row
                pointer, _, past = walk.next(step + 1, lambda: model.advance_head(hidden))
                pointer_input = pointer_inputs(table, pointer[:, None])[:, 0]  # (B, d)
                steps, finished = end_rows(past, finished, steps, step + 1, step + 1 >= min_steps)
                if bool(finished.all()):
                    break
            hidden = model.decode_step(patch, n_prompt + 1 + step, cache, pointer_input)
        frames = patches_to_frames(generated[:, : int(steps.max())])  # (B, T, D)
        mels, lengths = model.to_mel(frames, torch.minimum(steps * patch_size, max_frames))
    return [row[:n].clone() for row, n in zip(mels.clone(), lengths.tolist())]


def _start_pointers(model: DiTAR, text, text_lengths, prompt_mel, prompt_lengths, n_prompt, prompt_text_lengths):
    """A phoneme pointer's start: (B,) the first target phoneme, and (B, G + 1) the pointers of the
    prefill's inputs (the aligner's phoneme for each prompt patch, then the start); None, None for a
    model without a pointer."""
    if model.pointer_embedding is None:
        return None, None

    def align(spoken: torch.Tensor, width: int) -> torch.Tensor:
        frames, lengths = model.to_frames(prompt_mel, prompt_lengths)  # (B, T', D)
        return model.align(text, spoken, frames, lengths, width)[1]  # (B, G)

    return start_pointers(text_lengths, prompt_text_lengths, n_prompt, align)


def _prompt_patches(model: DiTAR, prompt_mel: torch.Tensor, prompt_lengths: torch.Tensor):
    """(B, Tp, M) log-mel -> whole patches (B, G, P, D) in the model's frame space, their counts (B,)."""
    patch_size = model.config.patch_size
    frames, lengths = model.to_frames(prompt_mel, prompt_lengths)  # (B, T', D), (B,)
    n_patches = torch.div(lengths.long(), patch_size, rounding_mode="floor")  # drop a partial last patch
    patches, _ = frames_to_patches(frames, n_patches * patch_size, patch_size)  # (B, N, P, D)
    patches = patches.to(model.bos.dtype)  # the model's dtype (frames are computed in float32)
    return patches[:, : int(n_patches.max()) if len(n_patches) else 0], n_patches


def synthesize_mel(
    model: DiTAR,
    text_tokens: Sequence[torch.Tensor],
    prompt_tokens: Sequence[torch.Tensor],
    prompt_mels: Sequence[torch.Tensor],
    options: DiTARSamplingOptions,
) -> list[torch.Tensor]:
    """Zero-shot synthesis of log-mel for a batch of items.

    Item i reads phonemes ``prompt_tokens[i] + text_tokens[i]`` and continues the acoustic prompt
    ``prompt_mels[i]``; its frame budget and its minimum come from the target phoneme count only.

    Args:
        model: the DiTAR model.
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
    text, text_lengths = pad_rows([torch.cat([p, t]).long() for p, t in zip(prompt_tokens, text_tokens)], 0)  # (B, L)
    prompt, prompt_lengths = pad_rows([m.float() for m in prompt_mels], 0.0)  # (B, Tp, M)
    targets = torch.tensor([len(t) for t in text_tokens])  # (B,) target phonemes
    spoken = torch.tensor([len(p) for p in prompt_tokens])  # (B,) prompt phonemes
    return generate(model, text.to(device), text_lengths.to(device), prompt.to(device), prompt_lengths.to(device),
                    options, options.max_frames(targets), options.min_frames_for(targets), spoken)
