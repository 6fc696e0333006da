"""The duration plan: counts from the aligner's pointers, a planned track that follows the rounded
running sums (skipping a phoneme that rounds to nothing), the prompt's pace, and a predictor that learns."""

import torch

from ttsframe.modules.duration_plan import (RATE_RANGE, DurationPredictor, duration_loss, plan, prompt_rate,
                                            steps_per_phoneme)


def test_steps_per_phoneme_counts_real_steps_only():
    pointers = torch.tensor([[0, 0, 1, 3, 3, 3], [0, 1, 1, 2, 2, 2]])
    counts = steps_per_phoneme(pointers, torch.tensor([6, 4]), 4)
    assert counts.tolist() == [[2, 1, 0, 3], [1, 2, 1, 0]]


def test_plan_follows_the_rounded_running_sums_from_the_start():
    predicted = torch.tensor([[9.0, 9.0, 2.0, 1.4, 0.2, 1.4, 0.0], [1.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    pointers, steps = plan(predicted, torch.tensor([2, 0]), torch.tensor([6, 2]), torch.ones(2), 8)
    # row 0: phonemes 2..5 take 2, 1.4, 0.2, 1.4 -> ends 2, 3 (3.4), 4 (3.6), 5: phoneme 4 gets one step here
    assert steps.tolist() == [5, 4]
    assert pointers[0].tolist() == [2, 2, 3, 4, 5, 5, 5, 5]  # past the plan: the last phoneme
    assert pointers[1].tolist() == [0, 1, 1, 1, 1, 1, 1, 1]
    # a phoneme whose share rounds to nothing is skipped; the pace scales every duration
    pointers, steps = plan(torch.tensor([[2.0, 0.3, 2.0]]), torch.tensor([0]), torch.tensor([3]), torch.ones(1), 6)
    assert pointers[0].tolist()[:4] == [0, 0, 2, 2] and steps.tolist() == [4]
    pointers, steps = plan(torch.tensor([[2.0, 0.3, 2.0]]), torch.tensor([0]), torch.tensor([3]), torch.tensor([2.0]), 9)
    assert steps.tolist() == [9] and pointers[0].tolist() == [0, 0, 0, 0, 1, 2, 2, 2, 2]  # ends 4, 5 (4.6), 9 (8.6)


def test_prompt_rate_is_aligned_over_predicted_steps_within_its_range():
    predicted = torch.tensor([[2.0, 2.0, 5.0], [2.0, 2.0, 5.0], [2.0, 2.0, 5.0]])
    prompt_pointers = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
    rate = prompt_rate(predicted, prompt_pointers, torch.tensor([6, 2, 6]), torch.tensor([2, 2, 0]))
    assert torch.allclose(rate, torch.tensor([1.5, RATE_RANGE[0], 1.0]))  # 6/4; 2/4 clamped; spoke nothing


def test_the_predictor_learns_durations_that_depend_on_the_phoneme_and_its_neighbours():
    torch.manual_seed(0)
    predictor = DurationPredictor(vocab_size=8, width=32)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 8, (32, 10), generator=g)
    lengths = torch.randint(4, 11, (32,), generator=g)
    counts = (tokens % 4 + (torch.roll(tokens, 1, 1) == 3).long()).float()  # a phoneme's class, + 1 after a "3"
    losses = []
    for _ in range(150):
        loss = duration_loss(predictor(tokens, lengths), counts, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    predictor.eval()
    predicted = predictor(tokens, lengths).expm1()
    mask = torch.arange(10) < lengths[:, None]
    mask[:, 0] = False  # its left neighbour is outside the row
    assert (predicted.round() == counts)[mask].float().mean() > 0.9
