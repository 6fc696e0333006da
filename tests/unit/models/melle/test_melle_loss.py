"""MELLE loss: each term's sign, value on hand-made cases, masking, and the weighted total."""

import math

import torch

from ttsframe.models.melle.loss import (MelleLossConfig, MellePrediction, flux_loss, kl_loss, melle_loss,
                                        regression_loss, stop_loss)


def prediction(seed=0, garbage=None):
    """Two rows: 5 and 3 real frames of 4 bins; r = 2, so 3 and 2 real steps."""
    g = torch.Generator().manual_seed(seed)
    frame_mask = torch.arange(5)[None] < torch.tensor([5, 3])[:, None]
    step_mask = torch.arange(3)[None] < torch.tensor([3, 2])[:, None]
    fields = {name: torch.randn(2, 5, 4, generator=g) for name in ("coarse", "refined", "mu", "logvar", "target")}
    stop_logits = torch.randn(2, 3, generator=g)
    stop_targets = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    if garbage is not None:  # anything at padded positions
        for name, value in fields.items():
            value[~frame_mask] = garbage
        stop_logits[~step_mask] = garbage
        stop_targets[~step_mask] = 1.0
    return MellePrediction(fields["coarse"], fields["refined"], fields["mu"], fields["logvar"], fields["target"],
                           frame_mask, stop_logits, stop_targets, step_mask)


def test_signs():
    for seed in range(5):
        metrics = melle_loss(prediction(seed))
        assert metrics["reg"] >= 0 and metrics["kl"] >= 0 and metrics["stop"] >= 0
        assert metrics["flux"] <= 0
        assert 0 <= metrics["stop_accuracy"] <= 1


def test_terms_on_hand_made_cases():
    y = torch.randn(1, 6, 3)
    mask = torch.ones(1, 6, dtype=torch.bool)
    assert regression_loss(y, y, mask) == 0
    torch.testing.assert_close(regression_loss(y + 2.0, y, mask), torch.tensor(2.0 + 4.0))  # |2| + 2^2
    # KL(N(y, 1) || N(y, 1)) = 0; KL(N(y + 1, e^2) || N(y, 1)) = 1/2 (e^2 + 1 - 1 - 2) per bin.
    assert kl_loss(y, torch.zeros_like(y), y, mask).abs() < 1e-7
    torch.testing.assert_close(kl_loss(y + 1, torch.full_like(y, 2.0), y, mask), torch.tensor(0.5 * (math.e**2 - 2)))
    # Flux: -|mu_t - y_{t-1}| averaged over frames 1..T-1; a static prediction at the last target
    # frame is the worst case (flux 0), a moving one is rewarded (negative).
    static = torch.cat([y[:, :1], y[:, :-1]], 1)  # mu_t = y_{t-1}
    assert flux_loss(static, y, mask) == 0
    torch.testing.assert_close(flux_loss(static + 0.5, y, mask), torch.tensor(-0.5))
    # Stop: positives weigh pos_weight times more.
    logits, targets, steps = torch.zeros(1, 4), torch.tensor([[0.0, 0.0, 0.0, 1.0]]), torch.ones(1, 4, dtype=torch.bool)
    torch.testing.assert_close(stop_loss(logits, targets, steps, 1.0), torch.tensor(math.log(2)))
    torch.testing.assert_close(stop_loss(logits, targets, steps, 100.0), torch.tensor(math.log(2) * 103 / 4))


def test_padding_changes_nothing():
    clean, dirty = melle_loss(prediction(3, garbage=None)), None
    for garbage in (0.0, 1e4, -1e4):
        dirty = melle_loss(prediction(3, garbage=garbage))
        for key in clean:
            torch.testing.assert_close(dirty[key], clean[key], msg=key)


def test_total_is_the_weighted_sum_and_gradients_flow():
    p = prediction(1)
    for name in ("coarse", "refined", "mu", "logvar"):
        getattr(p, name).requires_grad_(True)
    p.stop_logits.requires_grad_(True)
    config = MelleLossConfig(kl_weight=0.3, flux_weight=0.7, stop_weight=2.0, stop_pos_weight=5.0)
    m = melle_loss(p, config)
    torch.testing.assert_close(m["reg"], m["reg_coarse"] + m["reg_refined"])
    torch.testing.assert_close(m["loss"], m["reg"] + 0.3 * m["kl"] + 0.7 * m["flux"] + 2.0 * m["stop"])
    m["loss"].backward()
    for name in ("coarse", "refined", "mu", "logvar", "stop_logits"):
        grad = getattr(p, name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert (p.mu.grad[1, 3:] == 0).all() and (p.coarse.grad[1, 3:] == 0).all()  # padding gets no gradient


def test_pointer_terms_join_the_total_with_their_weights():
    p = prediction(1)
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]]])  # (1, 3, 2)
    moves, mask = torch.tensor([[0, 1, 1]]), torch.tensor([[True, True, False]])
    plain = melle_loss(p)
    p.aligner_loss, p.advance = torch.tensor(0.8), (logits, moves, mask)
    m = melle_loss(p, MelleLossConfig(aligner_weight=0.5, advance_weight=2.0))
    expected = -torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]  # both real steps are right, with the same margin
    torch.testing.assert_close(m["advance"], expected)
    assert float(m["advance_accuracy"]) == 1.0 and m["aligner"] is p.aligner_loss
    torch.testing.assert_close(m["loss"], plain["loss"] + 0.5 * 0.8 + 2.0 * expected)
    assert "advance" not in plain and "aligner" not in plain
