"""Our CosyVoice 2 parts, given the released parts' weights through our converters, compute what the
reference code computes (tests/fixtures/cosyvoice2, made by scripts/make_cosyvoice2_fixture.py from
CosyVoice's own modules at a tiny size with random weights).

Tolerances are float32 round-off (the same operations in another order), stated per part: HiFT 1e-6
absolute (waveforms peak near 0.1), flow 1e-5 (values up to 5; seen 1.4e-6), LM 1e-5 (seen: equal). Each part also checks that
its converter maps every key of the module at the released size (`<part>_keys.json`) and that a
deliberately wrong mapping (two weights of the same shape swapped) breaks the match, so the
comparison has the power to catch one.
"""

from __future__ import annotations

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


def swap_names(monkeypatch, module, key_function: str, a: str, b: str) -> None:
    """A wrong converter: `module.<key_function>` maps onto our `b` what belongs to our `a`, and back."""
    right = getattr(module, key_function)

    def swapped(key: str):
        ours = right(key)
        return ours and ours.replace(a, "\0").replace(b, a).replace("\0", b)

    monkeypatch.setattr(module, key_function, swapped)


def map_released_keys(part: str, build, rename) -> tuple[dict, dict]:
    """(their released state, our state dict at the released size), both on the meta device, after
    checking that `rename` maps every key (`map_state` raises otherwise)."""
    from ttsframe.inference.state_map import fold_weight_norm, map_state

    state = released_state(part)
    with torch.device("meta"):
        target = build().state_dict()
    assert set(map_state(fold_weight_norm(state), rename, target, f"{part}.pt")) == set(target)
    return state, target


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

    state, target = map_released_keys("hift", lambda: HiFTGenerator(cosyvoice2()), hift_key)
    magnitudes = sum(v.numel() for k, v in state.items() if k.endswith("original0"))  # folded into weights
    assert len(state) == 328 and sum(t.numel() for t in state.values()) == 20_821_295
    assert sum(t.numel() for t in target.values()) == 20_821_295 - magnitudes
    with pytest.raises(UserError, match=r"unexpected keys \(1\): extra.weight.*missing keys \(1\): conv_post.bias"):
        state = {**state, "extra.weight": torch.empty(1, device="meta")}
        del state["conv_post.bias"]
        with torch.device("meta"):
            convert_hift_state(state)


def test_a_wrong_hift_mapping_breaks_the_match(hift_fixture, monkeypatch):
    """conv1 and conv2 of every Snake layer swapped (same shapes, so the load itself succeeds)."""
    from ttsframe.vocoders import hift as module

    state, io, kwargs = hift_fixture
    swap_names(monkeypatch, module, "hift_key", ".conv1.", ".conv2.")
    with torch.no_grad():
        wav = module.convert_hift_state(state, hift_config(kwargs))(io["mel"], phase=io["phase"], noise=io["noise"])
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
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2Flow, cosyvoice2_release, flow_key

    state, target = map_released_keys("flow", lambda: CosyVoice2Flow(cosyvoice2_release()), flow_key)
    assert sum(t.numel() for t in target.values()) == sum(t.numel() for t in state.values()) == 112_549_360


def test_a_wrong_flow_mapping_breaks_the_match(flow_fixture, monkeypatch):
    """The query and key projections of every attention, encoder and estimator, swapped (same shapes)."""
    from ttsframe.models.cosyvoice import flow_cosyvoice2 as module

    state, io, kwargs = flow_fixture
    swap_names(monkeypatch, module, "flow_key", ".q.weight", ".k.weight")
    ours = flow_outputs(module.convert_flow_state(state, flow_config(kwargs)), io, "offline")
    assert (ours["velocity"] - io["velocity_offline"]).abs().max() > 100 * FLOW_TOL["atol"]


# ---- LM ---------------------------------------------------------------------------------------

LM_TOL = dict(atol=1e-5, rtol=1e-5)  # logits of magnitude ~4


def llm_config(kwargs: dict):
    from ttsframe.models.cosyvoice.lm import LMConfig

    return LMConfig(style="cosyvoice2", n_text=kwargs["vocab_size"], n_speech=kwargs["speech_token_size"],
                    d_model=kwargs["hidden_size"], n_heads=kwargs["num_attention_heads"],
                    n_kv_heads=kwargs["num_key_value_heads"], n_layers=kwargs["num_hidden_layers"],
                    ffn_dim=kwargs["intermediate_size"], dropout=0.0, rope_base=1e6, norm_eps=1e-6,
                    release_layout=True)


@pytest.fixture(scope="module")
def llm_fixture():
    return read_fixture("llm")


@pytest.fixture(scope="module")
def llm(llm_fixture, tmp_path_factory):
    from ttsframe.models.cosyvoice.lm_release import load_llm_checkpoint

    return through_pt_file("llm", load_llm_checkpoint, llm_config(llm_fixture[2]), tmp_path_factory)


def llm_outputs(llm, io, layout: str):
    """Our (logits, targets) at the real positions of the packed rows; the bistream layout
    interleaves the first row (one block of 5 text : 15 speech tokens), as the reference did."""
    blocks = torch.tensor([1, 0]) if layout == "bistream" else None
    with torch.no_grad():
        logits, targets, real = llm.row_logits(io["text"], io["text_len"], io["speech"], io["speech_len"],
                                               blocks=blocks)
    return logits[real], targets[real]


@pytest.mark.parametrize("layout", ["unistream", "bistream"])
def test_lm_logits_and_targets_match_the_reference(llm, llm_fixture, layout):
    """Rows [sos, text, task, speech] (bistream: [sos, 5 text, 15 speech, text, task, speech]) of a
    padded batch: the same targets (eos 40, fill 42) and the same logits at every real position."""
    _, io, _ = llm_fixture
    lengths = io[f"lengths_{layout}"]
    real = torch.arange(io[f"logits_{layout}"].shape[1])[None] < lengths[:, None]
    logits, targets = llm_outputs(llm, io, layout)
    assert torch.equal(targets, io[f"target_{layout}"][real])
    assert (targets == 42).sum() == (layout == "bistream") and (targets == 40).sum() == 2
    torch.testing.assert_close(logits, io[f"logits_{layout}"][real], **LM_TOL)


def test_lm_converter_maps_the_released_keys():
    from ttsframe.models.cosyvoice.lm import SpeechLM
    from ttsframe.models.cosyvoice.lm_release import llm_key, released_lm

    state, target = map_released_keys("llm", lambda: SpeechLM(released_lm()), llm_key)
    qwen_head = state["llm.model.lm_head.weight"].numel()  # Qwen's text head: tied, unused
    assert sum(t.numel() for t in target.values()) == sum(t.numel() for t in state.values()) - qwen_head


def test_a_wrong_lm_mapping_breaks_the_match(llm_fixture, monkeypatch):
    """The gate and up projections of every Qwen2 MLP swapped (same shapes)."""
    from ttsframe.models.cosyvoice import lm_release as module

    state, io, kwargs = llm_fixture
    swap_names(monkeypatch, module, "llm_key", ".gate_proj.", ".up_proj.")
    logits, _ = llm_outputs(module.convert_llm_state(state, llm_config(kwargs)), io, "unistream")
    real = torch.arange(io["logits_unistream"].shape[1])[None] < io["lengths_unistream"][:, None]
    assert (logits - io["logits_unistream"][real]).abs().max() > 100 * LM_TOL["atol"]
