"""Packing variable-length segments into rows: [phonemes_i ; audio_i ; pad ...].

In a padded batch every segment (the phonemes, the audio) has its own length per row.
The models want each row's segments back to back, with padding only at one end, so that
causal attention over a row sees the phonemes and then the audio without holes:

    row 0:  p p p a a a a .          (pad_left=False: training layout)
    row 1:  p p a a a . . .
            ^ column 0

    row 0:  . p p p a a a a          (pad_left=True: generation layout, every row ends
    row 1:  . . . p p a a a           at the last column, so decode steps line up)

Index arithmetic: with ``offset_i`` the first column of row i (0, or S - total_i when
padding on the left) and ``rel = column - offset_i``, segment k covers
``cum_k(i) <= rel < cum_k(i) + len_k(i)`` where ``cum_k`` sums the earlier segments'
lengths; its item there is ``rel - cum_k(i)``. All segments are concatenated along time
(padded widths ``W_k``) and one gather reads item j of segment k at ``sum(W_<k) + j``;
padding columns read an extra zero slot at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class PackedRows:
    values: torch.Tensor  # (B, S, *F) packed segments, zeros at padding
    padding_mask: torch.Tensor  # (B, S) bool, True at real positions
    positions: torch.Tensor  # (B, S) long, index within the item's own segment (0 at padding)
    starts: torch.Tensor  # (B, n_segments) long, column where each segment starts


def pack_segments(
    segments: Sequence[torch.Tensor],
    lengths: Sequence[torch.Tensor],
    *,
    pad_left: bool = False,
) -> PackedRows:
    """Packs each row's segments back to back.

    Args:
        segments: per segment (B, W_k, *F) values, the same trailing shape F for all.
        lengths: per segment (B,) real items per row (<= W_k).
        pad_left: put the padding before the content instead of after it.

    Returns:
        `PackedRows` with S = the longest row's total length.
    """
    batch = segments[0].shape[0]
    device = segments[0].device
    lengths = [length.to(device=device, dtype=torch.long) for length in lengths]
    totals = torch.stack(lengths).sum(dim=0)  # (B,)
    width = int(totals.max()) if batch else 0
    columns = torch.arange(width, device=device)[None]  # (1, S)
    offsets = width - totals if pad_left else torch.zeros_like(totals)  # (B,)
    rel = columns - offsets[:, None]  # (B, S)

    flat = torch.cat(list(segments), dim=1)  # (B, sum W_k, *F)
    zero_slot = flat.new_zeros((batch, 1) + tuple(flat.shape[2:]))
    flat = torch.cat([flat, zero_slot], dim=1)
    source = torch.full_like(rel, flat.shape[1] - 1)  # (B, S): zero slot by default
    positions = torch.zeros_like(rel)
    starts = []
    cum = torch.zeros_like(totals)  # (B,) items of earlier segments in this row
    base = 0  # padded width of earlier segments in `flat`
    for segment, length in zip(segments, lengths):
        item = rel - cum[:, None]  # (B, S) index within this segment
        inside = (item >= 0) & (item < length[:, None])
        source = torch.where(inside, base + item, source)
        positions = torch.where(inside, item, positions)
        starts.append(offsets + cum)
        cum = cum + length
        base += segment.shape[1]

    index = source.view(batch, width, *([1] * (flat.dim() - 2))).expand(batch, width, *flat.shape[2:])
    values = flat.gather(1, index)  # (B, S, *F)
    padding_mask = (rel >= 0) & (rel < totals[:, None])
    return PackedRows(values, padding_mask, positions, torch.stack(starts, dim=1))


def take_segment(values: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Reads ``length`` consecutive columns from each row's start: (B, S, *F) -> (B, length, *F).

    Columns past a row's segment (or past S) hold other items or clamped repeats; mask them.
    """
    batch, width = values.shape[:2]
    columns = (starts[:, None] + torch.arange(length, device=values.device)).clamp(max=max(width - 1, 0))
    index = columns.view(batch, length, *([1] * (values.dim() - 2))).expand(batch, length, *values.shape[2:])
    return values.gather(1, index)


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_length) bool, True for the first ``length`` items."""
    return torch.arange(max_length, device=lengths.device)[None] < lengths[:, None]


def pad_rows(rows: list[torch.Tensor], value: float | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (T_i, ...) -> padded (B, T_max, ...) filled with `value` after each row, lengths (B,) long."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    shape = (len(rows), int(lengths.max()) if rows else 0, *rows[0].shape[1:]) if rows else (0, 0)
    out = torch.full(shape, value, dtype=rows[0].dtype if rows else torch.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out, lengths
