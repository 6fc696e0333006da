"""What the MELLE task renders at validation: each dev utterance continued from its first third."""

from __future__ import annotations

import torch

from ttsframe.data.collate import Batch
from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel

PROMPT_SHARE = 1 / 3
SAMPLING = MelleSamplingOptions(seed=0)


def melle_samples(model, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
    """[(name, log-mel (T, M))]: the ground truth, then prompt + generated continuation."""
    items = []
    for i in range(min(max_items, len(batch.ids))):
        length = int(batch.frame_lengths[i])
        prompt = max(1, int(length * PROMPT_SHARE))
        mel = batch.mel[i, :length]  # (T, M)
        tokens = batch.tokens[i : i + 1, : int(batch.token_lengths[i])]
        [generated] = generate_mel(model, tokens, batch.token_lengths[i : i + 1], mel[None, :prompt],
                                   torch.tensor([prompt], device=tokens.device), SAMPLING,
                                   max_frames=torch.tensor([2 * (length - prompt) + 10]))
        items.append((f"{batch.ids[i]}_truth", mel))
        items.append((f"{batch.ids[i]}_melle", torch.cat([mel[:prompt], generated.to(mel.device)])))
    return items
