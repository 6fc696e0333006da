"""An unsupervised text-to-frame aligner: which phoneme each frame speaks, learnt from the data alone.

The aligner of RAD-TTS (Badlani et al., 2021, "One TTS alignment to rule them all"), as we read it:
small convolutional encoders turn the phonemes into keys (B, L, d) and the frames into queries
(B, T, d); the soft alignment is a softmax over the phonemes of each frame of

    logit(t, j) = -|q_t - k_j|^2 / sqrt(d)  (+ log of a beta-binomial prior near the diagonal)

trained with the forward-sum loss: the CTC loss of the phoneme sequence 1 .. L given those
per-frame distributions (plus a blank), i.e. the likelihood summed over every monotonic path
that visits each phoneme once, in order. `monotonic_alignment` (the Viterbi path, Glow-TTS's MAS)
turns the soft alignment into a hard one: each frame's phoneme index, non-decreasing, every
phoneme at least one frame.

Frames are standardised log-mel; the model families use the hard alignment as a target for
attention heads (`guided_attention.aligned_loss`) without a separate data stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.modules.packing import lengths_to_mask

_MASKED = -1e4  # logit of a padded phoneme


@dataclass
class AlignerConfig:
    vocab_size: int
    n_mels: int = 80
    d_model: int = 128
    prior_weight: float = 1.0  # scale of the beta-binomial prior's log in the logits (0: none)
    blank_logit: float = -1.0  # of CTC's blank, against the phonemes' logits


class ConvStack(nn.Sequential):
    """(B, T, C_in) -> (B, T, C_out): kernel-3 convolutions with ReLU, then a 1x1."""

    def __init__(self, channels_in: int, hidden: int, channels_out: int, layers: int = 2):
        blocks = []
        for index in range(layers):
            blocks += [nn.Conv1d(channels_in if index == 0 else hidden, hidden, 3, padding=1), nn.ReLU()]
        super().__init__(*blocks, nn.Conv1d(hidden, channels_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ForwardSumAligner(nn.Module):
    """Soft and hard alignments of frames to phonemes, and the forward-sum loss that trains them."""

    def __init__(self, config: AlignerConfig):
        super().__init__()
        self.config = config
        self.text_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.key_encoder = ConvStack(config.d_model, config.d_model, config.d_model)
        self.query_encoder = ConvStack(config.n_mels, config.d_model, config.d_model, layers=3)

    def log_alignment(self, text: torch.Tensor, text_lengths: torch.Tensor, frames: torch.Tensor,
                      frame_lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) phonemes, (B,), (B, T, M) frames (standardised, zeros past the lengths), (B,) ->
        (B, T, L) log p(phoneme j | frame t), about -1e4 at padded phonemes."""
        text_mask = lengths_to_mask(text_lengths, text.shape[1])  # (B, L)
        keys = self.key_encoder(self.text_embedding(text) * text_mask[..., None])  # (B, L, d); padding as zeros
        queries = self.query_encoder(frames)  # (B, T, d)
        queries, keys = queries.float(), keys.float()
        distance = (queries.pow(2).sum(-1, keepdim=True) - 2 * queries @ keys.transpose(1, 2)
                    + keys.pow(2).sum(-1)[:, None, :])  # (B, T, L) squared; cdist's gradient is NaN at 0
        logits = -distance / keys.shape[-1] ** 0.5
        if self.config.prior_weight:
            prior = beta_binomial_log_prior(frame_lengths, text_lengths, frames.shape[1], text.shape[1])
            logits = logits + self.config.prior_weight * prior
        return logits.masked_fill(~text_mask[:, None, :], _MASKED).log_softmax(dim=-1)  # finite: CTC's gradient stays finite

    def forward_sum_loss(self, log_alignment: torch.Tensor, text_lengths: torch.Tensor,
                         frame_lengths: torch.Tensor) -> torch.Tensor:
        """CTC of the targets 1 .. L_b over each row's frames: (B, T, L), (B,), (B,) -> scalar, per phoneme."""
        batch, _, n_text = log_alignment.shape
        blank = log_alignment.new_full(log_alignment.shape[:2] + (1,), self.config.blank_logit)
        log_probs = torch.cat([blank, log_alignment], dim=-1).log_softmax(dim=-1)  # (B, T, 1 + L)
        targets = torch.arange(1, n_text + 1, device=log_alignment.device).expand(batch, -1)  # (B, L)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, frame_lengths, text_lengths, blank=0,
                          reduction="none", zero_infinity=True)  # (B,)
        return (loss / text_lengths.clamp(min=1)).mean()


def beta_binomial_log_prior(frame_lengths: torch.Tensor, text_lengths: torch.Tensor, n_frames: int,
                            n_text: int, scale: float = 1.0) -> torch.Tensor:
    """(B, T, L) log BetaBinomial(j; L - 1, scale (t + 1), scale (T - t)): frame t of T near phoneme t L / T.

    Values past a row's lengths are finite and meaningless (masked by the caller).
    """
    t = torch.arange(n_frames, device=frame_lengths.device, dtype=torch.float32)[None, :, None]  # (1, T, 1)
    j = torch.arange(n_text, device=frame_lengths.device, dtype=torch.float32)[None, None, :]  # (1, 1, L)
    frames = frame_lengths.float()[:, None, None]
    n = (text_lengths.float() - 1).clamp(min=0)[:, None, None]
    k = torch.minimum(j, n)
    alpha, beta = scale * (t + 1), scale * (frames - t).clamp(min=1)
    log_choose = torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    log_beta = lambda a, b: torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    return log_choose + log_beta(k + alpha, n - k + beta) - log_beta(alpha, beta)


@torch.no_grad()
def monotonic_alignment(log_alignment: torch.Tensor, text_lengths: torch.Tensor,
                        frame_lengths: torch.Tensor) -> torch.Tensor:
    """The most likely monotonic path (Viterbi): (B, T, L) log-probs -> (B, T) long phoneme index per frame.

    Frame 0 speaks phoneme 0, the last real frame phoneme L_b - 1, each step moves by 0 or 1, so every
    phoneme gets >= 1 frame (rows need T_b >= L_b; where not, the path still ends at L_b - 1).
    Padded frames repeat the last phoneme.
    """
    batch, n_frames, n_text = log_alignment.shape
    scores = log_alignment.float().clamp(min=-1e9)
    best = torch.full((batch, n_text), -1e9, device=scores.device)
    best[:, 0] = scores[:, 0, 0]
    moved = torch.zeros(batch, n_frames, n_text, dtype=torch.bool, device=scores.device)
    for t in range(1, n_frames):
        from_previous = F.pad(best[:, :-1], (1, 0), value=-1e9)  # (B, L): the path was at j - 1
        moved[:, t] = from_previous > best
        best = torch.maximum(best, from_previous) + scores[:, t]
    path = torch.zeros(batch, n_frames, dtype=torch.long, device=scores.device)
    index = (text_lengths - 1).clamp(min=0).long()
    rows = torch.arange(batch, device=scores.device)
    for t in range(n_frames - 1, -1, -1):
        real = t < frame_lengths
        path[:, t] = torch.where(real, index, (text_lengths - 1).clamp(min=0))
        step = moved[rows, t, index] & real & (index > 0)
        index = index - step.long()
    return path
