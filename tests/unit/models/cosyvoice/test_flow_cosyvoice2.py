"""CosyVoice 2's released flow architecture (CosyVoice2Flow) beyond the reference's batch of one:
padded batches, chunk causality under the streaming masks, sampling shapes and seeds. Its
equivalence with CosyVoice's own code: test_cosyvoice2_equivalence.py."""

import dataclasses

import pytest
import torch

from ttsframe.models.cosyvoice.flow_cosyvoice2 import PRESETS, CosyVoice2Flow, cosyvoice2_tiny


@pytest.fixture(scope="module")
def flow():
    torch.manual_seed(0)
    return CosyVoice2Flow(cosyvoice2_tiny()).eval()


def test_a_row_alone_equals_its_row_in_a_padded_batch(flow):
    g = torch.Generator().manual_seed(1)
    tokens, lengths = torch.randint(0, 50, (2, 11), generator=g), torch.tensor([11, 7])
    with torch.no_grad():
        for streaming in (False, True):
            mu, frames = flow.encode(tokens, lengths, streaming)
            alone, _ = flow.encode(tokens[1:, :7], lengths[1:], streaming)
            assert frames.tolist() == [22, 14]
            torch.testing.assert_close(mu[1:, :, :14], alone, atol=1e-5, rtol=1e-5)
            mask = (torch.arange(22)[None] < frames[:, None]).float()[:, None]  # (B, 1, T)
            x, cond, spk = torch.randn(2, 80, 22, generator=g), torch.randn(2, 80, 22, generator=g), torch.randn(2, 80)
            v = flow.estimator(x, mask, mu, torch.tensor([0.4, 0.4]), spk, cond, streaming)
            v_alone = flow.estimator(x[1:, :, :14], mask[1:, :, :14], alone, torch.tensor([0.4]), spk[1:],
                                     cond[1:, :, :14], streaming)
            torch.testing.assert_close(v[1:, :, :14], v_alone, atol=1e-5, rtol=1e-5)
            assert v[1, :, 14:].abs().max() == 0  # padded frames


def test_streaming_chunks_do_not_see_far_ahead(flow):
    """With the chunk masks (4 tokens, 8 frames), the first chunk's mu depends on the first chunk's
    tokens and the 3-token look-ahead only; offline, it depends on every token."""
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, 50, (1, 12), generator=g)
    changed = tokens.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 50  # beyond chunk 1 (tokens 0-3) and its look-ahead (4-6)
    lengths = torch.tensor([12])
    with torch.no_grad():
        same = [flow.encode(t, lengths, streaming=True)[0][..., :8] for t in (tokens, changed)]
        differ = [flow.encode(t, lengths, streaming=False)[0][..., :8] for t in (tokens, changed)]
    torch.testing.assert_close(same[0], same[1], atol=0, rtol=0)
    assert (differ[0] - differ[1]).abs().max() > 1e-4


def test_generate_returns_the_frames_after_the_prompt(flow):
    g = torch.Generator().manual_seed(3)
    tokens, prompt = torch.randint(0, 50, (6,), generator=g), torch.randint(0, 50, (3,), generator=g)
    prompt_mel, spk = torch.randn(6, 80, generator=g) - 4, torch.randn(16, generator=g)
    run = lambda seed, **kw: flow.generate(tokens, prompt, prompt_mel, spk,  # noqa: E731
                                           generator=torch.Generator().manual_seed(seed), n_steps=3, **kw)
    mel = run(0)
    assert mel.shape == (12, 80) and torch.isfinite(mel).all()
    assert torch.equal(mel, run(0)) and not torch.equal(mel, run(1))
    assert not torch.equal(mel, run(0, cfg_scale=0.0))


def test_presets():
    release = PRESETS["cosyvoice2_release"]()
    assert (release.n_speech, release.dim, release.channels, release.chunk_tokens) == (6561, 512, 256, 25)
    with torch.device("meta"):
        assert sum(p.numel() for p in CosyVoice2Flow(release).parameters()) == 112_549_360


def test_batched_sample_is_generate_row_by_row(flow):
    """`sample` (the synthesizer's call) on a padded batch gives each row what `generate` (the
    reference's call, one utterance) gives it from the same noise; its prompt is cut to 2 x tokens."""
    g = torch.Generator().manual_seed(4)
    tokens, lengths = torch.randint(0, 50, (2, 6), generator=g), torch.tensor([6, 4])
    prompt, prompt_lengths = torch.randint(0, 50, (2, 3), generator=g), torch.tensor([3, 2])
    prompt_mel, spk = torch.randn(2, 7, 80, generator=g) - 4, torch.randn(2, 16, generator=g)
    mel_lengths = torch.tensor([7, 5])  # 7 frames: the row's 3 prompt tokens keep 6; 5: 2 tokens, 4 frames
    noise = torch.randn(2, 18, 80, generator=g)
    mel, out_lengths = flow.sample(tokens, lengths, spk, prompt, prompt_mel, prompt_token_lengths=prompt_lengths,
                                   prompt_mel_lengths=mel_lengths, n_steps=3, noise=noise)
    assert mel.shape == (2, 12, 80) and out_lengths.tolist() == [12, 8] and mel[1, 8:].abs().max() == 0
    for i, (n, p) in enumerate(zip(lengths.tolist(), prompt_lengths.tolist())):
        alone = flow.generate(tokens[i, :n], prompt[i, :p], prompt_mel[i, :2 * p], spk[i],
                              noise=noise[i, :2 * (p + n)].T, n_steps=3)
        torch.testing.assert_close(mel[i, :2 * n], alone, atol=1e-5, rtol=1e-5)
    seeded = [flow.sample(tokens, lengths, spk, n_steps=2, seed=s)[0] for s in (5, 5, 6)]
    assert torch.equal(seeded[0], seeded[1]) and not torch.equal(seeded[0], seeded[2])


def test_training_prediction_and_a_step_that_learns():
    """forward cuts rows to 2 x tokens, leaves the prompt prefix out of the loss, replays its draws,
    and a few steps on one batch lower the CFM loss (both the encoder and the estimator get gradient)."""
    from ttsframe.models.cosyvoice.flow_build import build_flow
    from ttsframe.models.cosyvoice.flow_loss import draw_step, flow_loss

    torch.manual_seed(0)
    net = build_flow(dataclasses.asdict(cosyvoice2_tiny()))
    assert isinstance(net, CosyVoice2Flow)
    g = torch.Generator().manual_seed(5)
    tokens, token_lengths = torch.randint(0, 50, (2, 9), generator=g), torch.tensor([9, 6])
    mel, mel_lengths = torch.randn(2, 19, 80, generator=g) - 5, torch.tensor([19, 11])  # -> 9 and 5 tokens
    spk = torch.randn(2, 16, generator=g)
    draws = draw_step(net.config, torch.tensor([18, 10]), 18, torch.Generator().manual_seed(1))
    prediction = net(tokens, token_lengths, mel, mel_lengths, spk, draws=draws)
    assert prediction.velocity.shape == prediction.target.shape == (2, 18, 80)
    kept_prompt = draws.prompt_lengths * draws.keep
    assert prediction.loss_mask.sum(1).tolist() == (torch.tensor([18, 10]) - kept_prompt).tolist()
    again = net(tokens, token_lengths, mel, mel_lengths, spk, draws=draws)
    torch.testing.assert_close(again.velocity, prediction.velocity)

    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        loss = flow_loss(net(tokens, token_lengths, mel, mel_lengths, spk, draws=draws))["loss"]
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            assert net.token_embedding.weight.grad.abs().sum() > 0 and net.estimator.out_proj.weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.75 * losses[0]  # seen: 27.0 -> 17.2
