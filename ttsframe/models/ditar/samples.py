"""What the DiTAR task renders at validation: each dev utterance continued from its first third."""

from __future__ import annotations

import torch

from ttsframe.data.collate import Batch
from ttsframe.models.ditar.generate import DiTARSamplingOptions, generate
from ttsframe.models.ditar.model import DiTAR
from ttsframe.training.audio_samples import mel_continuations

SAMPLING = DiTARSamplingOptions(seed=0)


def ditar_samples(model: DiTAR, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
    """[(name, log-mel (T, M))]: the ground truth, then prompt + generated continuation."""
    def continuation(tokens, token_lengths, prompt_mel, prompt_lengths, max_frames):
        return generate(model, tokens, token_lengths, prompt_mel, prompt_lengths, SAMPLING, max_frames=max_frames)

    return mel_continuations(batch, max_items, continuation, "ditar")
