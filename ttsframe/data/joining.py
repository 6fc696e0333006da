"""Training rows in the zero-shot layout: two utterances of one speaker joined into one row.

Zero-shot synthesis reads [prompt text + target text ; prompt audio] and asks the model to go on.
Single-sentence training rows never show that: their text ends in final punctuation and their audio
in trailing silence, then EOS (or the stop flag), so a model trained on them alone stops, or
repeats, right where the prompt ends (a toy VALL-E: P(EOS) = 1.000 after sentence A of an [A ; B]
row; a CosyVoice LM trained on one voice: zero-shot outputs 0.45x the recordings' length).
VALL-E's own LibriLight segments hold several sentences, which hides this there; LibriTTS, LJSpeech,
VCTK and the built-in corpus hold one sentence per utterance.

`join_same_speaker` turns a share of the training stream into such rows: an item drawn for a join
waits for the next item of its speaker and the two become one row, A then B, with the word
boundary that synthesis puts between the prompt's and the target's text (`prepare_prompts`). The
whole row is trained on (A is a real utterance too); what changes is that A's end is followed by
more text and more speech instead of EOS. Every item still appears exactly once per epoch: one
alone, or inside one joined row; items still waiting when the stream ends come out alone.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

JOINED = "+"  # joined row ids: "<id A>+<id B>"


def join_items(first: dict, second: dict, boundary_id: int | None) -> dict:
    """One item of `first` then `second` (same speaker): text, frames and every time series joined;
    the speaker embedding is the second's (the target's)."""
    tokens = [first["tokens"]]
    if boundary_id is not None and len(first["tokens"]) and int(first["tokens"][-1]) != boundary_id:
        tokens.append(torch.tensor([boundary_id], dtype=first["tokens"].dtype))
    joined = {"id": f"{first['id']}{JOINED}{second['id']}", "speaker": second["speaker"],
              "tokens": torch.cat([*tokens, second["tokens"]]), "frames": first["frames"] + second["frames"]}
    if "codes" in first:
        joined["codes"] = torch.cat([first["codes"], second["codes"]], dim=1)  # (K, T1 + T2)
    if "mel" in first:
        joined["mel"] = torch.cat([first["mel"], second["mel"]], dim=0)  # (T1 + T2, D)
    if "speech" in first:
        joined["speech"] = torch.cat([first["speech"], second["speech"]])  # (S1 + S2,)
    if "spk" in second:
        joined["spk"] = second["spk"]
    return joined


def join_same_speaker(items: Iterable[dict], share: float, rng: np.random.Generator,
                      boundary_id: int | None, max_length: int | None = None) -> Iterator[dict]:
    """Yields `items`, with about `share` of them (the first of each pair) joined to the next item of
    the same speaker (see the module docstring).

    Args:
        share: probability that an item is held back to open a joined row (0: nothing changes).
        rng: the stream's generator (a function of seed, epoch, rank and worker: resumable).
        boundary_id: the vocabulary's word-boundary id put between the two texts (None: none).
        max_length: longest joined row in frames + tokens (the batcher's `max_frames`); a pair
            longer than that comes out as two rows.
    """
    if share <= 0:
        yield from items
        return
    waiting: dict[str, dict] = {}
    for item in items:
        first = waiting.pop(item["speaker"], None)
        if first is not None:
            length = first["frames"] + item["frames"] + len(first["tokens"]) + len(item["tokens"]) + 1
            if max_length is None or length <= max_length:
                yield join_items(first, item, boundary_id)
                continue
            yield first
        if rng.random() < share:
            waiting[item["speaker"]] = item
        else:
            yield item
    yield from waiting.values()
