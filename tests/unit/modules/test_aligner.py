"""The forward-sum aligner: its prior, the Viterbi path's guarantees, and learning a toy alignment."""

import torch

from ttsframe.modules.aligner import AlignerConfig, ForwardSumAligner, beta_binomial_log_prior, monotonic_alignment


def test_the_prior_peaks_near_the_diagonal_and_is_a_distribution_over_the_phonemes():
    log_prior = beta_binomial_log_prior(torch.tensor([20]), torch.tensor([5]), 20, 5)  # (1, 20, 5)
    torch.testing.assert_close(log_prior.exp().sum(-1), torch.ones(1, 20), atol=1e-4, rtol=1e-4)
    assert log_prior[0, 0].argmax() == 0 and log_prior[0, 19].argmax() == 4 and log_prior[0, 10].argmax() == 2


def test_the_path_is_monotonic_covers_every_phoneme_and_follows_the_scores():
    # Row 0: 7 frames of 3 phonemes whose best path is 0 0 1 1 1 2 2; row 1: 4 frames of 2, padded.
    truth = torch.tensor([[0, 0, 1, 1, 1, 2, 2], [0, 1, 1, 1, 1, 1, 1]])
    scores = torch.full((2, 7, 3), -5.0).scatter(2, truth[..., None], 0.0)
    scores[1, :, 2] = -1e4  # row 1 has 2 phonemes
    path = monotonic_alignment(scores.log_softmax(-1), torch.tensor([3, 2]), torch.tensor([7, 4]))
    assert path.tolist() == truth.tolist()
    # Scores that favour skipping a phoneme: the path still visits each one, in order.
    greedy = torch.zeros(1, 5, 4)
    greedy[0, :, 3] = 5.0
    path = monotonic_alignment(greedy.log_softmax(-1), torch.tensor([4]), torch.tensor([5]))[0]
    assert path[0] == 0 and path[-1] == 3 and set(path.tolist()) == {0, 1, 2, 3}
    assert (path.diff() >= 0).all() and (path.diff() <= 1).all()


def test_the_aligner_learns_which_phoneme_each_frame_speaks():
    # Each phoneme id has its own frame vector; utterances are random phoneme strings held 2-4 frames each.
    torch.manual_seed(0)
    vocab, n_mels = 8, 6
    codebook = torch.randn(vocab, n_mels) * 2
    rows, texts, paths = [], [], []
    for _ in range(8):
        text = torch.randint(1, vocab, (5,))
        frames_per = torch.randint(2, 5, (5,))
        path = torch.repeat_interleave(torch.arange(5), frames_per)
        rows.append(codebook[text[path]] + 0.1 * torch.randn(len(path), n_mels))
        texts.append(text)
        paths.append(path)
    lengths = torch.tensor([len(r) for r in rows])
    frames = torch.zeros(8, int(lengths.max()), n_mels)
    for i, r in enumerate(rows):
        frames[i, : len(r)] = r
    text, text_lengths = torch.stack(texts), torch.full((8,), 5)
    aligner = ForwardSumAligner(AlignerConfig(vocab_size=vocab, n_mels=n_mels, d_model=32))
    optimizer = torch.optim.Adam(aligner.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = aligner.forward_sum_loss(aligner.log_alignment(text, text_lengths, frames, lengths), text_lengths, lengths)
        first = float(loss) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.5 * first
    path = monotonic_alignment(aligner.log_alignment(text, text_lengths, frames, lengths), text_lengths, lengths)
    right = sum(int((path[i, : len(p)] == p).sum()) for i, p in enumerate(paths))
    assert right / int(lengths.sum()) > 0.9
