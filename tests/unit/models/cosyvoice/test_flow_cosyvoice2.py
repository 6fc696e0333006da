"""CosyVoice 2's released flow architecture (CosyVoice2Flow) beyond the reference's batch of one:
padded batches, chunk causality under the streaming masks, sampling shapes and seeds. Its
equivalence with CosyVoice's own code: test_cosyvoice2_equivalence.py."""

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
