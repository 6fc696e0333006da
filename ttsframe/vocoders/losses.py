"""GAN vocoder losses (HiFi-GAN): least-squares adversarial terms, feature matching, mel L1.

Inputs are what `ttsframe.vocoders.discriminators` return: a list of scores per sub-discriminator
and a list of feature-map lists. Every loss is a sum over sub-discriminators of means, so it does
not depend on the batch size or the segment length. Weights (x45 mel, x2 feature matching) are
applied by the task, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: push real scores to 1 and generated ones to 0: sum_k mean((1 - D(x))^2) + mean(D(G(s))^2)."""
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2) for r, f in zip(real_scores, fake_scores))


def generator_adversarial_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: push the discriminators' scores of generated audio to 1: sum_k mean((1 - D(G(s)))^2)."""
    return sum(torch.mean((1 - f.float()) ** 2) for f in fake_scores)


def feature_matching_loss(real_features: list[list[torch.Tensor]],
                          fake_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """sum over sub-discriminators and layers of mean |D_l(x) - D_l(G(s))| (real features are targets)."""
    return sum(F.l1_loss(f.float(), r.detach().float())
               for real, fake in zip(real_features, fake_features) for r, f in zip(real, fake))


def mel_l1_loss(real_mel: torch.Tensor, fake_mel: torch.Tensor) -> torch.Tensor:
    """mean |log-mel(x) - log-mel(G(s))|, both (B, n_mels, T); the task weights it x45."""
    frames = min(real_mel.shape[-1], fake_mel.shape[-1])
    return F.l1_loss(fake_mel[..., :frames].float(), real_mel[..., :frames].float())
