"""CosyVoice flow decoder: shapes, length regulator, chunk masks, chunk causality and streaming,
padding invariance, CFG, seeds, and a tiny model that learns one utterance and samples it back."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ttsframe.models.cosyvoice.flow import CosyVoiceFlow, FlowConfig, regulate_length, time_grid
from ttsframe.models.cosyvoice.flow_estimator import FlowContext
from ttsframe.models.cosyvoice.flow_loss import FlowDraws, cfm_loss, draw_step, flow_loss
from ttsframe.models.cosyvoice.flow_masks import MaskChoice, attention_mask, draw_mask_choice, frame_mask
from ttsframe.modules.transformer import AdaptiveLayerNorm
from ttsframe.models.cosyvoice.flow_presets import PRESETS, flow_base, flow_tiny, get_preset

N_SPEECH, M, SPK = 32, 80, 256
RATE = flow_tiny(N_SPEECH).frames_per_token  # 86.13 / 25 mel frames per token
# CosyVoice's N(0, I) source; Grad-TTS's N(mu, I); and the latter with a speaker-conditioned mu and
# blocks at the mel rate (flow_cpu)
VARIANTS = [{"source": "noise"}, {"source": "mu"}, {"source": "mu", "speaker_mu": True, "decoder_layers": 2}]


def model(**changes) -> CosyVoiceFlow:
    torch.manual_seed(0)
    return CosyVoiceFlow(dataclasses.replace(flow_tiny(N_SPEECH), **changes)).eval()


def mel_frames(n_tokens: int) -> int:
    return int(n_tokens * RATE + 0.5)


def batch(token_lengths=(9, 5, 7), seed=0):
    g = torch.Generator().manual_seed(seed)
    token_lengths = torch.tensor(token_lengths)
    mel_lengths = torch.tensor([mel_frames(n) for n in token_lengths.tolist()])
    B, L, T = len(token_lengths), int(token_lengths.max()), int(mel_lengths.max())
    tokens = torch.randint(0, N_SPEECH, (B, L), generator=g) * (torch.arange(L) < token_lengths[:, None])
    mel = torch.randn(B, T, M, generator=g) - 5.0
    return tokens, token_lengths, mel, mel_lengths, torch.randn(B, SPK, generator=g)


def draws_for(mel_lengths, n_frames, mode=MaskChoice("full"), seed=1):
    g = torch.Generator().manual_seed(seed)
    B = len(mel_lengths)
    return FlowDraws(torch.randn(B, n_frames, M, generator=g), torch.rand(B, generator=g),
                     torch.tensor([3, 0, 2][:B]), torch.tensor([True, True, False][:B]), mode)


def test_shapes_of_training_and_sampling():
    net = model()
    tokens, token_lengths, mel, mel_lengths, spk = batch()
    p = net(tokens, token_lengths, mel, mel_lengths, spk, generator=torch.Generator().manual_seed(0))
    assert p.velocity.shape == p.target.shape == mel.shape and p.loss_mask.shape == mel.shape[:2]
    assert torch.isfinite(cfm_loss(p))
    out, lengths = net.sample(tokens, token_lengths, spk, tokens[:, :3], mel[:, :10], n_steps=2, seed=0)
    assert lengths.tolist() == [mel_frames(n) for n in (9, 5, 7)] == [31, 17, 24]
    assert out.shape == (3, 31, M) and (out[1, 17:] == 0).all() and torch.isfinite(out).all()


def test_length_regulator_matches_interpolation_per_row():
    h = torch.randn(3, 9, 6)
    token_lengths, frame_lengths = torch.tensor([9, 4, 6]), torch.tensor([31, 14, 20])
    frames, sources = regulate_length(h, token_lengths, frame_lengths, 33)
    assert frames.shape == (3, 33, 6) and sources.shape == (3, 33)
    for i, (n, t) in enumerate(zip(token_lengths.tolist(), frame_lengths.tolist())):
        expected = F.interpolate(h[i : i + 1, :n].transpose(1, 2), size=t, mode="linear").transpose(1, 2)
        torch.testing.assert_close(frames[i, :t], expected[0], atol=1e-5, rtol=1e-5)
        assert (frames[i, t:] == 0).all() and sources[i, t - 1] >= n - 1 and sources[i, 0] == 0
    # a fixed rate maps frame j to the same tokens whatever follows
    short, _ = regulate_length(h[:1, :4], torch.tensor([4]), torch.tensor([14]), 14, 1 / RATE)
    long, _ = regulate_length(h[:1], torch.tensor([9]), torch.tensor([31]), 31, 1 / RATE)
    torch.testing.assert_close(short[:, :10], long[:, :10])


def test_mask_patterns():
    full, causal = attention_mask("full", 5), attention_mask("causal", 5)
    chunk = attention_mask("chunk", 5, chunk_size=2)
    assert full.all() and torch.equal(causal, torch.ones(5, 5, dtype=torch.bool).tril())
    assert chunk.int().tolist() == [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1] * 5]
    assert torch.equal(attention_mask("chunk", 7, chunk_size=1), attention_mask("causal", 7))
    padded = attention_mask("full", 5, lengths=torch.tensor([5, 3]))  # (2, 5, 5)
    assert padded[0].all() and padded[1, :3, :3].all() and not padded[1, 3:].any() and not padded[1, :, 3:].any()
    with pytest.raises(ValueError, match="valid: full, causal, chunk"):
        attention_mask("window", 5)
    with pytest.raises(ValueError, match="chunk_tokens >= 1"):
        attention_mask("chunk", 5)
    # mel frames take the chunk of the latest token they read
    sources = torch.tensor([[0, 1, 1, 2, 3, 4]])
    assert frame_mask(MaskChoice("chunk", 2), sources)[0, 2].tolist() == [True, True, True, False, False, False]
    assert frame_mask(MaskChoice("full"), sources) is None


def test_mask_draws_follow_probs():
    g = torch.Generator().manual_seed(0)
    assert draw_mask_choice((0, 0, 1, 0), 15, g) == MaskChoice("chunk", 15)
    assert draw_mask_choice((0, 0, 0, 1), 15, g) == MaskChoice("chunk", 30)
    drawn = {draw_mask_choice((1, 1, 1, 1), 4, g) for _ in range(64)}
    assert len(drawn) == 4
    with pytest.raises(ValueError, match="mask_probs"):
        FlowConfig(n_speech=4, mask_probs=(1.0, 0.0))


def target_chunks(n_prompt: int, n_tokens: int, chunk: int) -> torch.Tensor:
    """Chunk id of each target mel frame, as `sample` assigns it."""
    _, sources = regulate_length(torch.zeros(1, n_tokens, 1), torch.tensor([n_tokens]),
                                 torch.tensor([mel_frames(n_tokens)]), mel_frames(n_tokens), 1 / RATE)
    return (sources[0] + n_prompt) // chunk


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ["chunk", "causal"])
def test_chunk_mask_makes_earlier_chunks_independent_of_later_tokens(mode, variant):
    net = model(**variant)  # chunk_tokens 4: prompt 3 + target 13 tokens = chunks 0..3
    tokens, _, mel, _, spk = batch(token_lengths=(13,))
    changed = tokens.clone()
    changed[0, 9:] = (changed[0, 9:] + 1) % N_SPEECH  # the last chunk: tokens 12.. of prompt + target
    prompt_tokens, prompt_mel = torch.randint(0, N_SPEECH, (1, 3)), mel[:, :10]
    outs = {}
    for name, mask_mode in (("same", mode), ("full", "full")):
        a, _ = net.sample(tokens, torch.tensor([13]), spk, prompt_tokens, prompt_mel, mask_mode=mask_mode, seed=3)
        b, _ = net.sample(changed, torch.tensor([13]), spk, prompt_tokens, prompt_mel, mask_mode=mask_mode, seed=3)
        outs[name] = (a[0] - b[0]).abs().amax(-1)  # (T_mel,)
    early = target_chunks(3, 13, 4) < 3
    assert early.sum() > 20 and outs["same"][early].max() < 1e-5, outs["same"]
    assert outs["same"][~early].max() > 1e-3 and outs["full"][early].max() > 1e-3


@pytest.mark.parametrize("variant", VARIANTS)
def test_streaming_prefix_reproduces_the_completed_chunks(variant):
    net = model(**variant)
    tokens, _, mel, _, spk = batch(token_lengths=(13,))
    prompt_tokens, prompt_mel = torch.randint(0, N_SPEECH, (1, 3)), mel[:, :10]
    kwargs = dict(mask_mode="chunk", seed=5, cfg_scale=0.7)
    full, _ = net.sample(tokens, torch.tensor([13]), spk, prompt_tokens, prompt_mel, **kwargs)
    part, part_lengths = net.sample(tokens[:, :5], torch.tensor([5]), spk, prompt_tokens, prompt_mel, **kwargs)
    done = target_chunks(3, 13, 4) < 2  # prompt 3 + 5 tokens received: chunks 0 and 1 are complete
    n = int(done.sum())
    assert 0 < n <= int(part_lengths[0])
    torch.testing.assert_close(part[0, :n], full[0, :n], atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", [MaskChoice("full"), MaskChoice("chunk", 4), MaskChoice("causal")])
def test_padding_invariance_of_loss_terms_and_sampling(mode, variant):
    net = model(**variant)
    tokens, token_lengths, mel, mel_lengths, spk = batch()
    draws = draws_for(mel_lengths, mel.shape[1], mode)
    together = net(tokens, token_lengths, mel, mel_lengths, spk, draws)
    for i in range(3):
        n, t = int(token_lengths[i]), int(mel_lengths[i])
        alone_draws = FlowDraws(draws.noise[i : i + 1, :t], draws.t[i : i + 1], draws.prompt_lengths[i : i + 1],
                                draws.keep[i : i + 1], mode)
        alone = net(tokens[i : i + 1, :n], token_lengths[i : i + 1], mel[i : i + 1, :t], mel_lengths[i : i + 1],
                    spk[i : i + 1], alone_draws)
        torch.testing.assert_close(alone.velocity[0], together.velocity[i, :t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(alone.frame_errors()[0], together.frame_errors()[i, :t], atol=1e-5, rtol=1e-5)
    assert together.loss_mask.sum(1).tolist() == [31 - 3, 17, 24]
    out, _ = net.sample(tokens, token_lengths, spk, n_steps=3, mask_mode=mode.mode, seed=7)
    for i in range(3):  # row i draws from seed + i, whatever the other rows
        alone, _ = net.sample(tokens[i : i + 1, : int(token_lengths[i])], token_lengths[i : i + 1], spk[i : i + 1],
                              n_steps=3, mask_mode=mode.mode, seed=7 + i)
        torch.testing.assert_close(alone[0], out[i, : alone.shape[1]], atol=1e-5, rtol=1e-5)


def test_cfg_scale_zero_is_the_conditional_velocity():
    net = model()
    g = torch.Generator().manual_seed(0)
    ctx = FlowContext(torch.randn(2, 6, M, generator=g), torch.randn(2, 6, M, generator=g),
                      F.normalize(torch.randn(2, SPK, generator=g), dim=-1), torch.ones(2, 6, dtype=torch.bool))
    x, t = torch.randn(2, 6, M, generator=g), torch.tensor([0.2, 0.7])
    conditional, unconditional = net.estimator(x, t, ctx), net.estimator(x, t, ctx.dropped())
    torch.testing.assert_close(net.velocity(x, t, ctx, cfg_scale=0.0), conditional)
    torch.testing.assert_close(net.velocity(x, t, ctx, cfg_scale=0.7), 1.7 * conditional - 0.7 * unconditional)
    assert not torch.allclose(conditional, unconditional)


def test_same_seed_same_mel_and_schedules():
    net = model()
    tokens, token_lengths, _, _, spk = batch()
    a, _ = net.sample(tokens, token_lengths, spk, n_steps=4, seed=11)
    b, _ = net.sample(tokens, token_lengths, spk, n_steps=4, generator=[torch.Generator().manual_seed(11 + i)
                                                                        for i in range(3)])
    c, _ = net.sample(tokens, token_lengths, spk, n_steps=4, seed=12)
    d, _ = net.sample(tokens, token_lengths, spk, n_steps=4, seed=11, schedule="linear")
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, d)
    assert torch.allclose(time_grid(4, "linear"), torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))
    torch.testing.assert_close(time_grid(2, "cosine"), torch.tensor([0.0, 1 - 0.5**0.5, 1.0]))


def test_training_draws_respect_the_config():
    config = dataclasses.replace(flow_tiny(N_SPEECH), cfg_dropout=0.5, prompt_prob=1.0)
    lengths = torch.full((400,), 40)
    d = draw_step(config, lengths, 40, torch.Generator().manual_seed(0))
    assert d.noise.shape == (400, 40, M) and 0.4 < d.keep.float().mean() < 0.6
    assert d.prompt_lengths.max() == 12 and (d.prompt_lengths > 0).float().mean() > 0.8  # floor(0.3 * 40)
    assert (d.t >= 0).all() and (d.t <= 1).all() and d.t.mean() < 0.45  # cosine: mean 1 - 2/pi


def test_mel_stats_round_trip_and_validation():
    net = model()
    mean, std = torch.linspace(-8, -2, M), torch.linspace(1, 3, M)
    net.set_mel_stats(mean, std)
    mel = torch.randn(2, 5, M) * std + mean
    torch.testing.assert_close(net.denormalize(net.normalize(mel)), mel)
    assert net.normalize(mel).std() < 1.5
    with pytest.raises(ValueError, match="std > 0"):
        net.set_mel_stats(mean, -std)
    with pytest.raises(ValueError, match="shape"):
        net.set_mel_stats(mean[:4], std[:4])


def test_presets_sizes_and_lookup():
    counts = {}
    for name, build in PRESETS.items():
        with torch.device("meta"):
            counts[name] = sum(p.numel() for p in CosyVoiceFlow(build(4096)).parameters())
    assert 0.5e6 <= counts["flow_tiny"] <= 2e6 and 50e6 <= counts["flow_base"] <= 150e6, counts
    assert get_preset("flow_base", 6561) == flow_base(6561)
    assert counts["flow_tiny"] < counts["flow_cpu"] <= 2.5e6
    base, cpu = flow_base(10), get_preset("flow_cpu", 10)
    assert (base.prior_weight, base.source, base.speaker_mu, base.decoder_layers) == (0.0, "noise", False, 0)  # CosyVoice's
    assert (cpu.prior_weight, cpu.source, cpu.speaker_mu, cpu.decoder_layers) == (1.0, "mu", True, 2)
    with pytest.raises(ValueError, match="valid: flow_tiny, flow_cpu, flow_base"):
        get_preset("flow_huge", 10)


def one_utterance(n_tokens=6):
    t = torch.arange(mel_frames(n_tokens), dtype=torch.float32)[:, None]
    bins = torch.arange(M)
    mel = -5 + 2 * torch.sin(0.25 * t + 0.1 * bins) - 0.04 * bins  # (T, M), a smooth log-mel
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, N_SPEECH, (1, n_tokens), generator=g), mel[None], torch.randn(1, SPK, generator=g)


def train(net, tokens, mel, spk, steps, rows, fixed_draws=False, lr=3e-3):
    """AdamW on one utterance repeated in ``rows`` rows: fresh draws each step, or one fixed set."""
    torch.manual_seed(0)
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    g, history = torch.Generator().manual_seed(0), []
    tokens, mel, spk = (x.expand(rows, *x.shape[1:]) for x in (tokens, mel, spk))
    token_lengths, mel_lengths = torch.tensor([tokens.shape[1]] * rows), torch.tensor([mel.shape[1]] * rows)
    draws = draw_step(net.config, mel_lengths, mel.shape[1], g) if fixed_draws else None
    for _ in range(steps):
        loss = cfm_loss(net(tokens, token_lengths, mel, mel_lengths, spk, draws, generator=g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return net.eval(), history


def test_cfm_loss_falls_on_a_fixed_batch():
    tokens, mel, spk = one_utterance()
    net = model()
    net.set_mel_stats(mel[0].mean(0), mel[0].std(0))
    _, history = train(net, tokens, mel, spk, steps=100, rows=4, fixed_draws=True)
    assert history[-1] < 0.05 * history[0], (history[0], history[-1])


def test_overfit_utterance_is_sampled_back():
    tokens, mel, spk = one_utterance()
    net = model(cfg_dropout=0.0, prompt_prob=0.0, mask_probs=(1.0, 0.0, 0.0, 0.0))
    net.set_mel_stats(mel[0].mean(0), mel[0].std(0))
    train(net, tokens, mel, spk, steps=200, rows=8)
    out, lengths = net.sample(tokens, torch.tensor([tokens.shape[1]]), spk, n_steps=10, cfg_scale=0.0, seed=0)
    assert lengths.tolist() == [mel.shape[1]]
    error, spread = (out - mel).abs().mean(), (mel - mel.mean(1, keepdim=True)).abs().mean()
    assert error < 0.3 * spread, (error, spread)


def test_prior_loss_trains_mu_towards_the_mel():
    tokens, mel, spk = one_utterance()
    net = model(prior_weight=1.0, cfg_dropout=0.0)
    net.set_mel_stats(mel[0].mean(0), mel[0].std(0))
    lengths, frames = torch.tensor([tokens.shape[1]]), torch.tensor([mel.shape[1]])
    g = torch.Generator().manual_seed(0)
    draws = draw_step(net.config, frames, mel.shape[1], g)
    with torch.no_grad():
        before = flow_loss(net(tokens, lengths, mel, frames, spk, draws), 1.0)
        assert before["loss"].item() == pytest.approx((before["cfm"] + before["prior"]).item())
        assert flow_loss(net(tokens, lengths, mel, frames, spk, draws))["loss"] == before["cfm"]  # weight 0
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for _ in range(60):
        losses = flow_loss(net(tokens, lengths, mel, frames, spk, generator=g), 1.0)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    assert losses["prior"] < 0.2 * before["prior"], (before["prior"], losses["prior"])
    assert model()(tokens, lengths, mel, frames, spk, generator=g).prior_errors is None  # CosyVoice's loss


def test_mu_source_starts_the_flow_at_mu():
    net = model(source="mu")
    tokens, token_lengths, mel, mel_lengths, spk = batch()
    draws = draws_for(mel_lengths, mel.shape[1])
    draws.t.zero_()  # x_t = x0: the estimator reads noise + mu, the target is x1 - noise - mu
    with torch.no_grad():
        shifted = net(tokens, token_lengths, mel, mel_lengths, spk, draws)
        plain = model()(tokens, token_lengths, mel, mel_lengths, spk, draws)
        frames, _ = regulate_length(net.encode(tokens, token_lengths, MaskChoice("full")), token_lengths, mel_lengths,
                                    mel.shape[1])
        mu = net.to_mu(frames) * plain.loss_mask[..., None]  # same weights in both models
    assert mu.abs().amax() > 1e-2
    torch.testing.assert_close((plain.target - shifted.target) * plain.loss_mask[..., None], mu, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown source"):
        flow_tiny(N_SPEECH).__class__(**{**dataclasses.asdict(flow_tiny(N_SPEECH)), "source": "zeros"})


def test_temperature_scales_the_starting_noise():
    net = model(source="mu")
    tokens, token_lengths, _, _, spk = batch()
    cold = [net.sample(tokens, token_lengths, spk, n_steps=2, temperature=0.0, seed=s)[0] for s in (1, 2)]
    warm = [net.sample(tokens, token_lengths, spk, n_steps=2, temperature=1.0, seed=s)[0] for s in (1, 2)]
    torch.testing.assert_close(cold[0], cold[1])  # no noise: the seed does not matter
    assert (warm[0] - warm[1]).abs().amax() > 1e-3


def test_speaker_mu_makes_mu_depend_on_the_speaker_and_decoder_layers_on_the_frames():
    tokens, token_lengths, _, _, spk = batch()
    other = spk.flip(0)
    for changes, depends in (({}, False), ({"speaker_mu": True}, True), ({"speaker_mu": True, "decoder_layers": 2}, True)):
        net = model(source="mu", **changes)
        for layer in net.modules():  # adaptive norms start as plain ones: give them a speaker effect
            if isinstance(layer, AdaptiveLayerNorm):
                torch.nn.init.normal_(layer.to_scale_shift.weight, std=0.1)
        mu = [net.sample(tokens, token_lengths, s, n_steps=0, temperature=0.0)[0] for s in (spk, other)]
        assert ((mu[0] - mu[1]).abs().amax() > 1e-3) == depends, changes
    with pytest.raises(ValueError, match="pass spk"):
        model(speaker_mu=True).encode(tokens, token_lengths, MaskChoice("full"))
    with pytest.raises(ValueError, match="decoder_layers"):
        model(decoder_layers=-1)
    assert sum(p.numel() for p in model(decoder_layers=2).decoder.parameters()) > 0 and model().decoder is None
