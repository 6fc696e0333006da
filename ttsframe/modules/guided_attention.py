"""An alignment aid for AR TTS: a loss that makes chosen attention heads look at the text along the
diagonal (the "guided attention" of DC-TTS, Tachibana et al. 2018, used by ESPnet's Transformer-TTS).

A small AR model over continuous frames predicts the next frames from the acoustic past so well
that it never needs the text (`val/text_reliance` ~ 0). Speech reads its text roughly at a steady
pace, so audio step i of N should look near text position j ~ i L / N of L. For the guided heads,

    prior(i, j) = exp(-(j / L - i / N)^2 / (2 sigma^2))
    loss = - mean over heads and real audio steps of log(sum_j p(i, j) prior(i, j) + eps)

where p(i, j) is the head's attention from audio step i to text position j, normalised over every
key the head sees (text and audio). The loss is 0 only when all of a head's attention sits on text
near the diagonal: unlike DC-TTS's sum(p (1 - prior)), a head cannot escape it by looking at the
audio instead. At inference nothing changes: the heads have learnt to find the text by content.

The linear diagonal is only roughly where speech is. With a hard alignment (each audio step's
phoneme a_i, e.g. from `ttsframe.modules.aligner`), `aligned_prior` puts the prior on a_i instead:
exp(-(j - a_i)^2 / (2 width^2)), width in phonemes; `prior_loss` takes either prior.
"""

from __future__ import annotations

import torch

from ttsframe.modules.packing import lengths_to_mask


def diagonal_prior(query_lengths: torch.Tensor, key_lengths: torch.Tensor, n_queries: int, n_keys: int,
                   sigma: float) -> torch.Tensor:
    """(B,) audio steps, (B,) text lengths -> (B, n_queries, n_keys) prior in (0, 1], 1 on the diagonal.

    Query i sits at i / N and key j at j / L (each row's own N and L); positions past a row's
    lengths get values that `diagonal_loss` masks out.
    """
    queries = torch.arange(n_queries, device=query_lengths.device)[None, :, None]  # (1, Tq, 1)
    keys = torch.arange(n_keys, device=key_lengths.device)[None, None, :]  # (1, 1, Tk)
    distance = keys / key_lengths.clamp(min=1)[:, None, None] - queries / query_lengths.clamp(min=1)[:, None, None]
    return torch.exp(-distance.pow(2) / (2 * sigma**2))  # (B, Tq, Tk)


def aligned_prior(phonemes: torch.Tensor, n_keys: int, width: float = 1.0) -> torch.Tensor:
    """(B, Tq) each audio step's phoneme index -> (B, Tq, n_keys) prior, 1 at that phoneme."""
    keys = torch.arange(n_keys, device=phonemes.device)[None, None, :]  # (1, 1, Tk)
    return torch.exp(-(keys - phonemes[..., None]).float().pow(2) / (2 * width**2))


def prior_loss(text_attention: torch.Tensor, prior: torch.Tensor, query_lengths: torch.Tensor,
               key_lengths: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The guided-attention loss (module docstring) of some heads against a prior.

    Args:
        text_attention: (B, H, Tq, Tk) attention of H heads from the Tq audio steps to the Tk text
            positions (a block of the full attention: rows need not sum to 1).
        prior: (B, Tq, Tk) in [0, 1] (`diagonal_prior`, `aligned_prior`).
        query_lengths: (B,) real audio steps; key_lengths: (B,) real text positions (>= 1 each).

    Returns:
        A scalar, the mean over the heads and the real audio steps.
    """
    batch, heads, n_queries, n_keys = text_attention.shape
    key_mask = lengths_to_mask(key_lengths, n_keys)[:, None, None, :]  # (B, 1, 1, Tk)
    on_prior = (text_attention.float() * prior[:, None] * key_mask).sum(dim=-1)  # (B, H, Tq)
    query_mask = lengths_to_mask(query_lengths, n_queries)[:, None, :].expand(batch, heads, n_queries)
    return -torch.log(on_prior[query_mask] + eps).mean()


def diagonal_loss(text_attention: torch.Tensor, query_lengths: torch.Tensor, key_lengths: torch.Tensor,
                  sigma: float = 0.2) -> torch.Tensor:
    """`prior_loss` against the diagonal of width ``sigma`` (a share of the utterance)."""
    prior = diagonal_prior(query_lengths, key_lengths, text_attention.shape[2], text_attention.shape[3], sigma)
    return prior_loss(text_attention, prior, query_lengths, key_lengths)
