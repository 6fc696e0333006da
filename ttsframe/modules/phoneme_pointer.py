"""A phoneme pointer for autoregressive frame models (VALL-E R's monotonic alignment, as we read it).

Each decoder step s (a MELLE group, a DiTAR patch) of ``size`` frames speaks one phoneme: the one a
forward-sum aligner (`ttsframe.modules.aligner`) gives its middle frame. The LM input that predicts
step s also carries that phoneme's embedding, and an advance head on the LM state of step s predicts
how many phonemes step s + 1 moves on (0 .. max_advance - 1), trained with cross-entropy.

Generation: the prompt's steps are aligned to the prompt's phonemes, the target starts at the first
target phoneme, and after each step the pointer moves on by the advance head's *expected* move (kept
with its fraction, floored to a phoneme: a step is shorter than most phonemes, so "stay" is the
likeliest move at nearly every step and the argmax would never move on), never past the text; a row
ends once the pointer passes its last phoneme.

A model with a duration plan (`ttsframe.modules.duration_plan`) follows instead a track planned from
the text before the first step; `PointerWalk` is either walk, as the families' generation loops use it.

With a `PhonemeContext`, the input also carries the text around the pointed phoneme (the neighbours
that colour how it is spoken), as a TTS text encoder gives it: the causal LM reads its text prefix
one way only, and finds the pointed phoneme's neighbours there by content alone.

These are the pieces the families share; each family wires them into its own model and loop.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.modules.aligner import ForwardSumAligner, monotonic_alignment
from ttsframe.modules.duration_plan import DurationPredictor, planned_track
from ttsframe.modules.packing import lengths_to_mask


def aligned_steps(aligner: ForwardSumAligner, text: torch.Tensor, text_lengths: torch.Tensor,
                  frames: torch.Tensor, frame_lengths: torch.Tensor, n_steps: int,
                  size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The aligner's forward-sum loss and each step's phoneme (that of its middle frame).

    Args:
        text: (B, L) phonemes; text_lengths: (B,).
        frames: (B, T, D) standardised frames, zeros past ``frame_lengths`` (B,).
        n_steps: N, steps per row (ceil(T / size) or fewer); size: frames per step.

    Returns:
        scalar loss, and (B, N) long phoneme index of each step.
    """
    log_alignment = aligner.log_alignment(text, text_lengths, frames, frame_lengths)  # (B, T, L)
    loss = aligner.forward_sum_loss(log_alignment, text_lengths, frame_lengths)
    path = monotonic_alignment(log_alignment.detach(), text_lengths, frame_lengths)  # (B, T)
    middle = (torch.arange(n_steps, device=path.device) * size + size // 2).clamp(max=path.shape[1] - 1)
    return loss, path[:, middle]


def pointer_phonemes(text: torch.Tensor, pointers: torch.Tensor) -> torch.Tensor:
    """(B, L) phonemes, (B, N) indices into them (clamped to the row) -> (B, N) phoneme ids."""
    return text.gather(1, pointers.clamp(0, text.shape[1] - 1))


class PhonemeContext(nn.Module):
    """Phonemes -> (B, L, D) the text around each one: embedding, then ``layers`` residual blocks of
    (conv of ``kernel``, GELU, LayerNorm), then a linear map that starts at zero (a model with a context
    starts as one without). 3 layers of kernel 5 see 6 phonemes either side."""

    def __init__(self, vocab_size: int, d_model: int, layers: int = 3, kernel: int = 5, dropout: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.convs = nn.ModuleList(nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, d_model)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) phonemes, (B,) lengths -> (B, L, D), zeros past the lengths."""
        mask = lengths_to_mask(text_lengths, text.shape[1])[..., None]  # (B, L, 1)
        x = self.embedding(text).masked_fill(~mask, 0.0)  # (B, L, D)
        for conv, norm in zip(self.convs, self.norms):
            x = x + self.dropout(norm(F.gelu(conv(x.transpose(1, 2)).transpose(1, 2))))
            x = x.masked_fill(~mask, 0.0)
        return self.out(x).masked_fill(~mask, 0.0)


def pointer_table(embedding: nn.Embedding, context: PhonemeContext | None, text: torch.Tensor,
                  text_lengths: torch.Tensor) -> torch.Tensor:
    """What an LM input adds when it points at each phoneme: (B, L) phonemes, (B,) lengths -> (B, L, D),
    the phoneme's embedding plus its context's encoding where the model has one. Generation computes
    it once per batch; `pointer_inputs` reads it at the pointers."""
    table = embedding(text)  # (B, L, D)
    return table if context is None else table + context(text, text_lengths)


def pointer_inputs(table: torch.Tensor, pointers: torch.Tensor) -> torch.Tensor:
    """(B, L, D) `pointer_table`, (B, N) indices (clamped to the row) -> (B, N, D) the inputs' additions."""
    index = pointers.clamp(0, table.shape[1] - 1)
    return table.gather(1, index[..., None].expand(-1, -1, table.shape[-1]))


def advance_targets(pointers: torch.Tensor, max_advance: int, fed: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N) phoneme index per step -> (B, N - 1) long, the move from step s to s + 1, clamped
    to 0 .. max_advance - 1 (the advance head's classes). With ``fed`` (B, N), the pointers the
    inputs carried (`jittered`): the move from fed[s] back onto pointers[s + 1]."""
    start = pointers if fed is None else fed
    return (pointers[:, 1:] - start[:, :-1]).clamp(0, max_advance - 1)


def jittered(pointers: torch.Tensor, share: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, N) monotonic pointers with a ``share`` of steps taking the pointer of the step before or
    after (a phoneme boundary a step early or late), kept monotonic: the timing errors a free-running
    advance head makes, shown in training so the model follows the pointer it is given."""
    batch, n = pointers.shape
    draw = torch.rand(batch, n, generator=generator, device=generator.device if generator else None)
    sign = torch.randint(0, 2, (batch, n), generator=generator, device=draw.device) * 2 - 1
    shift = (sign * (draw < share)).to(pointers.device)
    index = (torch.arange(n, device=pointers.device) + shift).clamp(0, n - 1)
    return pointers.gather(1, index).cummax(dim=1).values


def advance_loss(logits: torch.Tensor, moves: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the advance head, mean over real steps, and its (detached) accuracy.

    Args:
        logits: (B, N - 1, A); moves: (B, N - 1) long targets; mask: (B, N - 1) bool, real steps.
    """
    per_step = F.cross_entropy(logits.float().transpose(1, 2), moves, reduction="none")  # (B, N - 1)
    count = mask.sum().clamp(min=1)
    loss = per_step[mask].sum() / count
    with torch.no_grad():
        accuracy = ((logits.argmax(-1) == moves) & mask).sum() / count
    return loss, accuracy.float()


def expected_advance(logits: torch.Tensor) -> torch.Tensor:
    """(B, A) advance logits -> (B,) float, the expected move sum_a a * p(a)."""
    moves = torch.arange(logits.shape[-1], device=logits.device, dtype=torch.float32)
    return logits.float().softmax(dim=-1) @ moves


def start_pointers(text_lengths: torch.Tensor, prompt_text_lengths: torch.Tensor | None, n_prompt: torch.Tensor,
                   align: Callable[[torch.Tensor, int], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Where generation starts: (B,) the first target phoneme, and (B, G + 1) the pointers of the
    prefill's inputs (input i predicts prompt step i: the aligner's phoneme for each of the G prompt
    steps, then the start at input ``n_prompt``).

    Args:
        text_lengths: (B,) phonemes of prompt text + target text.
        prompt_text_lengths: (B,) phonemes the prompt speaks (None: 0).
        n_prompt: (B,) whole prompt steps.
        align: (spoken (B,) >= 1, G) -> (B, G) the aligned phoneme of each prompt step.
    """
    batch, device = text_lengths.shape[0], text_lengths.device
    spoken = torch.zeros(batch, dtype=torch.long, device=device) if prompt_text_lengths is None else \
        prompt_text_lengths.to(device).long()
    start = torch.minimum(spoken, text_lengths - 1)  # (B,)
    width = int(n_prompt.max()) if batch else 0
    pointers = torch.zeros(batch, width + 1, dtype=torch.long, device=device)
    if width:
        pointers[:, :width] = torch.minimum(align(spoken.clamp(min=1), width), start[:, None])
    pointers = pointers.scatter(1, n_prompt.long().to(device)[:, None], start[:, None])
    return start, pointers


def move_pointer(position: torch.Tensor, logits: torch.Tensor, text: torch.Tensor,
                 text_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One generation step of the pointer.

    Args:
        position: (B,) float, the pointer with its fraction; logits: (B, A) the advance head's.
        text: (B, L) phonemes; text_lengths: (B,).

    Returns:
        the new position (B,) float, the pointer (B,) long (never past the text), its phoneme ids
        (B,), and (B,) bool: the position passed the row's last phoneme.
    """
    position = position + expected_advance(logits)
    pointer = torch.minimum(position.floor().long(), text_lengths - 1)
    return position, pointer, text.gather(1, pointer[:, None])[:, 0], position >= text_lengths


class PointerWalk:
    """Generation's pointer after its start: the advance head's expected moves (`move_pointer`), or
    with ``plan`` = (planned (B, W), planned steps (B,)) from `duration_plan.planned_track`, that track.

    Args:
        start: (B,) long, the first target phoneme; text: (B, L) phonemes; text_lengths: (B,).
    """

    def __init__(self, start: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor,
                 plan: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.position = start.float()  # (B,) with its fraction (the head's walk)
        self.text, self.text_lengths, self.plan = text, text_lengths, plan

    def next(self, step: int, advance_logits: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor]:
        """The pointer of target step ``step`` (>= 1): (B,) index, (B,) phoneme ids, and (B,) bool, the
        row has passed its text (or its plan). ``advance_logits`` () -> (B, A) is called for the head only."""
        if self.plan is not None:  # the planned track; the row ends where the plan does
            planned, planned_steps = self.plan
            pointer = planned[:, step]
            return pointer, pointer_phonemes(self.text, pointer[:, None])[:, 0], step >= planned_steps
        self.position, pointer, phonemes, past = move_pointer(self.position, advance_logits(), self.text,
                                                              self.text_lengths)
        return pointer, phonemes, past


def begin_walk(start: torch.Tensor, pointers: torch.Tensor, n_prompt: torch.Tensor, text: torch.Tensor,
               text_lengths: torch.Tensor, width: int, predictor: DurationPredictor | None = None,
               prompt_text_lengths: torch.Tensor | None = None) -> tuple[PointerWalk, torch.Tensor]:
    """The walk after `start_pointers`: with a ``predictor`` (a duration plan to follow), its planned
    track over ``width`` steps (paced by the prompt where ``prompt_text_lengths`` is given), and the
    prefill's pointers (B, G + 1) with the first target step's phoneme at ``n_prompt``; else the
    advance head's walk and the pointers unchanged."""
    if predictor is None:
        return PointerWalk(start, text, text_lengths), pointers
    plan = planned_track(predictor, text, text_lengths, start, pointers[:, :-1], n_prompt, prompt_text_lengths, width)
    return PointerWalk(start, text, text_lengths, plan), pointers.scatter(1, n_prompt.long()[:, None], plan[0][:, :1])


def end_rows(past: torch.Tensor, finished: torch.Tensor, lengths: torch.Tensor, length: int,
             allowed: torch.Tensor | bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose pointer has passed the text end at ``length`` where ``allowed`` (B,) (their floor is
    met) and not already finished: -> (lengths (B,), finished (B,))."""
    ending = past & ~finished & allowed
    return torch.where(ending, length, lengths), finished | ending
