"""What the MELLE task renders at validation: each dev utterance continued from its first third."""

from __future__ import annotations

import torch

from ttsframe.data.collate import Batch
from ttsframe.models.melle.generate import MelleSamplingOptions, generate_mel
from ttsframe.training.audio_samples import mel_continuations

SAMPLING = MelleSamplingOptions(seed=0)


def melle_samples(model, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
    """[(name, log-mel (T, M))]: the ground truth, then prompt + generated continuation."""
    def generate(tokens, token_lengths, prompt_mel, prompt_lengths, max_frames):
        return generate_mel(model, tokens, token_lengths, prompt_mel, prompt_lengths, SAMPLING, max_frames=max_frames)

    return mel_continuations(batch, max_items, generate, "melle")
