"""Our CosyVoice 2 parts, given the released parts' weights through our converters, compute what the
reference code computes (tests/fixtures/cosyvoice2, made by scripts/make_cosyvoice2_fixture.py from
CosyVoice's own modules at a tiny size with random weights).

Tolerances are float32 round-off: the same operations in another order. Each part also checks that
its converter maps every key of the module at the released size (`<part>_keys.json`) and that a
deliberately wrong mapping (two weights of the same shape swapped) breaks the match, so the
comparison has the power to catch one.
"""

from __future__ import annotations

import re

import pytest
import torch
from cosyvoice2_fixture import hift_config, read_fixture, released_state

from ttsframe.errors import UserError

ATOL, RTOL = 1e-6, 1e-4  # waveforms peak near 0.1, f0 near 30 Hz


def through_pt_file(part: str, load, config, tmp_path_factory):
    """The fixture's reference state dict saved as `<part>.pt` (as released) and read by `load`."""
    state, _, _ = read_fixture(part)
    path = tmp_path_factory.mktemp(part) / f"{part}.pt"
    torch.save(state, path)
    return load(path, config)


# ---- HiFT -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hift_fixture():
    return read_fixture("hift")


@pytest.fixture(scope="module")
def hift(hift_fixture, tmp_path_factory):
    from ttsframe.vocoders.hift import load_hift_checkpoint

    return through_pt_file("hift", load_hift_checkpoint, hift_config(hift_fixture[2]), tmp_path_factory)


def test_hift_f0_and_source_match_the_reference(hift, hift_fixture):
    _, io, _ = hift_fixture
    with torch.no_grad():
        f0, source = hift.excitation(io["mel"], phase=io["phase"], noise=io["noise"])
    torch.testing.assert_close(f0, io["f0"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(source, io["source"], atol=ATOL, rtol=RTOL)


def test_hift_waveform_matches_the_reference(hift, hift_fixture):
    """Deterministic part alone (mel + the reference's excitation), then end to end from the mel with
    the reference's random draws (overtone phases, noise) passed in."""
    _, io, _ = hift_fixture
    with torch.no_grad():
        from_source = hift.decode(io["mel"], io["source"])
        from_mel = hift(io["mel"], phase=io["phase"], noise=io["noise"])
    assert from_mel.shape == io["wav"].shape and io["wav"].abs().max() > 0.05
    torch.testing.assert_close(from_source, io["wav"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(from_mel, io["wav"], atol=ATOL, rtol=RTOL)


def test_hift_converter_maps_the_released_keys():
    from ttsframe.vocoders.hift import HiFTGenerator, convert_hift_state, cosyvoice2, hift_key
    from ttsframe.inference.state_map import fold_weight_norm, map_state

    state = released_state("hift")
    assert len(state) == 328
    with torch.device("meta"):
        target = HiFTGenerator(cosyvoice2()).state_dict()
    mapped = map_state(fold_weight_norm(state), hift_key, target, "hift.pt")
    assert set(mapped) == set(target)
    magnitudes = sum(v.numel() for k, v in state.items() if k.endswith("original0"))  # folded into weights
    assert sum(t.numel() for t in state.values()) == 20_821_295
    assert sum(t.numel() for t in target.values()) == 20_821_295 - magnitudes
    with pytest.raises(UserError, match=r"unexpected keys \(1\): extra.weight.*missing keys \(1\): conv_post.bias"):
        state = {**state, "extra.weight": torch.empty(1, device="meta")}
        del state["conv_post.bias"]
        with torch.device("meta"):
            convert_hift_state(state)


def test_a_wrong_hift_mapping_breaks_the_match(hift_fixture, monkeypatch):
    """conv1 and conv2 of every Snake layer swapped (same shapes, so the load itself succeeds)."""
    from ttsframe.vocoders import hift as hift_module

    state, io, kwargs = hift_fixture
    right = hift_module.hift_key

    def swapped(key: str):
        ours = right(key)
        return ours and ours.replace(".conv1.", ".convX.").replace(".conv2.", ".conv1.").replace(".convX.", ".conv2.")

    monkeypatch.setattr(hift_module, "hift_key", swapped)
    wrong = hift_module.convert_hift_state(state, hift_config(kwargs))
    with torch.no_grad():
        wav = wrong(io["mel"], phase=io["phase"], noise=io["noise"])
    assert (wav - io["wav"]).abs().max() > 100 * ATOL


# ---- flow -------------------------------------------------------------------------------------

FLOW_TOL = dict(atol=1e-5, rtol=1e-5)  # mu, velocities and mel of magnitude 3-5; seen: 1.4e-6


def flow_config(kwargs: dict):
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2FlowConfig

    return CosyVoice2FlowConfig(
        n_speech=kwargs["vocab_size"], n_mels=kwargs["output_size"], spk_dim=kwargs["spk_embed_dim"],
        dim=kwargs["input_size"], encoder_heads=kwargs["encoder_heads"], encoder_ffn=kwargs["linear_units"],
        encoder_layers=kwargs["num_blocks"], chunk_tokens=kwargs["chunk_size"], channels=kwargs["channels"],
        estimator_heads=kwargs["num_heads"], head_dim=kwargs["attention_head_dim"],
        blocks_per_stage=kwargs["n_blocks"], mid_stages=kwargs["num_mid_blocks"], encoder_dropout=0.0)


@pytest.fixture(scope="module")
def flow_fixture():
    return read_fixture("flow")


@pytest.fixture(scope="module")
def flow(flow_fixture, tmp_path_factory):
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import load_flow_checkpoint

    return through_pt_file("flow", load_flow_checkpoint, flow_config(flow_fixture[2]), tmp_path_factory)


def flow_outputs(flow, io, mode: str) -> dict[str, torch.Tensor]:
    """Our encoder output mu, estimator velocity and 10-step sample for the fixture's inputs."""
    streaming = mode == "streaming"
    joined = torch.cat([io["prompt_token"], io["token"]], dim=1)
    with torch.no_grad():
        mu, _ = flow.encode(joined, torch.tensor([joined.shape[1]]), streaming)
        cond = torch.zeros_like(mu)
        cond[:, :, :io["prompt_feat"].shape[1]] = io["prompt_feat"].transpose(1, 2)
        spk = flow.speaker(io["embedding"])
        velocity = flow.estimator(io["x"], torch.ones_like(mu[:, :1]), mu, io["t"], spk, cond, streaming)
    mel = flow.generate(io["token"][0], io["prompt_token"][0], io["prompt_feat"][0], io["embedding"][0],
                        noise=io["noise"][0], streaming=streaming)
    return {"mu": mu, "velocity": velocity, "mel": mel.T[None]}


@pytest.mark.parametrize("mode", ["offline", "streaming"])
def test_flow_matches_the_reference(flow, flow_fixture, mode):
    """Encoder (mu), one estimator call (velocity at t = 0.3) and the 10-step Euler sample with CFG 0.7
    from the reference's fixed noise, with full attention (offline) and with the chunk masks."""
    _, io, _ = flow_fixture
    ours = flow_outputs(flow, io, mode)
    for name in ("mu", "velocity", "mel"):
        assert ours[name].shape == io[f"{name}_{mode}"].shape, name
        torch.testing.assert_close(ours[name], io[f"{name}_{mode}"], **FLOW_TOL, msg=lambda m, n=name: f"{n}: {m}")


def test_flow_converter_maps_the_released_keys():
    from ttsframe.inference.state_map import map_state
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2Flow, cosyvoice2_release, flow_key

    state = released_state("flow")
    with torch.device("meta"):
        target = CosyVoice2Flow(cosyvoice2_release()).state_dict()
    assert set(map_state(state, flow_key, target, "flow.pt")) == set(target)
    assert sum(t.numel() for t in target.values()) == sum(t.numel() for t in state.values()) == 112_549_360


def test_a_wrong_flow_mapping_breaks_the_match(flow_fixture, monkeypatch):
    """The query and key projections of every estimator attention swapped (same shapes)."""
    from ttsframe.models.cosyvoice import flow_cosyvoice2 as module

    state, io, kwargs = flow_fixture
    right = module.flow_key

    def swapped(key: str):
        ours = right(key)
        return ours and re.sub(r"\.([qk])\.weight$", lambda m: ".k.weight" if m[1] == "q" else ".q.weight", ours)

    monkeypatch.setattr(module, "flow_key", swapped)
    ours = flow_outputs(module.convert_flow_state(state, flow_config(kwargs)), io, "offline")
    assert (ours["velocity"] - io["velocity_offline"]).abs().max() > 100 * FLOW_TOL["atol"]
