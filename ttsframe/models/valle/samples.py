"""What VALL-E tasks render at validation: continuations of dev utterances from their own start.

Each item: the first third of an utterance is the acoustic prompt and the whole transcript is
the text, so the model must continue the utterance. The AR renders codebook 0 only (a coarse
but audible sketch: the NAR is trained in the next stage); the NAR fills codebooks 1..K-1 on the
ground-truth codebook 0. An AR with a phoneme pointer starts at the phoneme its aligner gives the
first frame after the prompt (the whole utterance aligned: validation has no prompt transcript).
"""

from __future__ import annotations

import torch

from ttsframe.data.collate import Batch
from ttsframe.models.valle.generate import generate_ar, generate_nar
from ttsframe.modules.sampling import SamplingOptions

PROMPT_SHARE = 1 / 3
SAMPLING = SamplingOptions(temperature=1.0, top_k=20, seed=0)


def _rows(batch: Batch, max_items: int):
    """(index, id, T, prompt frames) of the first `max_items` rows."""
    for i in range(min(max_items, len(batch.ids))):
        length = int(batch.frame_lengths[i])
        yield i, batch.ids[i], length, max(1, int(length * PROMPT_SHARE))


def ar_samples(ar, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
    """[(name, codes (1, T))]: ground truth codebook 0, then prompt + AR continuation."""
    items = []
    for i, key, length, prompt in _rows(batch, max_items):
        codes0 = batch.codes[i, :1, :length]  # (1, T)
        tokens = batch.tokens[i : i + 1, : int(batch.token_lengths[i])]
        token_lengths = batch.token_lengths[i : i + 1]
        [generated] = generate_ar(ar, tokens, token_lengths, codes0[:, :prompt],
                                  torch.tensor([prompt], device=tokens.device), SAMPLING,
                                  max_frames=torch.tensor([2 * (length - prompt) + 10]),
                                  prompt_text_lengths=_spoken(ar, tokens, token_lengths, codes0, prompt))
        items.append((f"{key}_truth_codebook0", codes0))
        items.append((f"{key}_ar", torch.cat([codes0[0, :prompt], generated.to(codes0.device)])[None]))
    return items


def nar_samples(nar, batch: Batch, max_items: int) -> list[tuple[str, torch.Tensor]]:
    """[(name, codes (K, T))]: ground truth, then prompt + NAR codebooks on the true codebook 0."""
    items = []
    for i, key, length, prompt in _rows(batch, max_items):
        codes = batch.codes[i : i + 1, :, :length]  # (1, K, T)
        tokens = batch.tokens[i : i + 1, : int(batch.token_lengths[i])]
        target = generate_nar(nar, tokens, batch.token_lengths[i : i + 1], codes[..., :prompt],
                              torch.tensor([prompt], device=tokens.device), codes[:, 0, prompt:],
                              torch.tensor([length - prompt], device=tokens.device))
        items.append((f"{key}_truth", codes[0]))
        items.append((f"{key}_nar", torch.cat([codes[0, :, :prompt], target[0]], dim=1)))
    return items


def _spoken(ar, tokens: torch.Tensor, token_lengths: torch.Tensor, codes0: torch.Tensor, prompt: int):
    """(1,) the phonemes the first `prompt` frames speak, by the AR's aligner on the whole utterance
    (tokens (1, L), codes0 (1, T)); None for an AR without a phoneme pointer."""
    if ar.aligner is None:
        return None
    with torch.no_grad():
        steps = ar.align(tokens, token_lengths, codes0, torch.tensor([codes0.shape[1]], device=codes0.device))[1]
    return steps[:, prompt]
