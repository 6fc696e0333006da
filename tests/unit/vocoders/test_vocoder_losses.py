"""GAN losses: non-negative, zero at their optimum, pushing scores the right way; discriminator shapes."""

import torch

from ttsframe.vocoders.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator, discriminators_tiny
from ttsframe.vocoders.losses import (discriminator_loss, feature_matching_loss, generator_adversarial_loss,
                                      mel_l1_loss)


def scores(value: float, n: int = 3) -> list[torch.Tensor]:
    return [torch.full((2, 5), value) for _ in range(n)]


def test_discriminator_loss_rewards_real_one_fake_zero():
    assert discriminator_loss(scores(1.0), scores(0.0)) == 0
    assert discriminator_loss(scores(0.0), scores(1.0)) == 6  # 3 sub-discriminators x (1 + 1)
    fake = scores(0.5)
    for f in fake:
        f.requires_grad_(True)
    discriminator_loss(scores(1.0), fake).backward()
    assert all((f.grad > 0).all() for f in fake)  # descent lowers the fake scores


def test_generator_loss_pushes_fake_scores_up():
    assert generator_adversarial_loss(scores(1.0)) == 0
    fake = scores(0.5)
    for f in fake:
        f.requires_grad_(True)
    loss = generator_adversarial_loss(fake)
    loss.backward()
    assert loss > 0 and all((f.grad < 0).all() for f in fake)  # descent raises them


def test_feature_matching_and_mel_l1():
    real = [[torch.ones(2, 4, 8), torch.zeros(2, 1, 8)]]
    assert feature_matching_loss(real, real) == 0
    fake = [[torch.zeros(2, 4, 8, requires_grad=True), torch.zeros(2, 1, 8)]]
    assert feature_matching_loss(real, fake) == 1
    mel = torch.randn(1, 80, 10)
    assert mel_l1_loss(mel, mel) == 0 and mel_l1_loss(mel, mel + 0.5) > 0.49
    assert mel_l1_loss(mel, torch.cat([mel, mel], -1)) == 0  # the longer one is cut


def test_discriminator_outputs():
    config = discriminators_tiny()
    wav = torch.randn(2, 1, 1000)
    for module, n in ((MultiPeriodDiscriminator(config), 5), (MultiScaleDiscriminator(config), 3)):
        out_scores, features = module(wav)
        assert len(out_scores) == len(features) == n
        assert all(s.shape[0] == 2 and s.dim() == 2 for s in out_scores)
        assert all(len(f) == len(features[0]) for f in features)
