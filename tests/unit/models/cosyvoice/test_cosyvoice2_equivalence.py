"""Our CosyVoice 2 parts, given the released parts' weights through our converters, compute what the
reference code computes (tests/fixtures/cosyvoice2, made by scripts/make_cosyvoice2_fixture.py from
CosyVoice's own modules at a tiny size with random weights).

Tolerances are float32 round-off: the same operations in another order. Each part also checks that
its converter maps every key of the module at the released size (`<part>_keys.json`) and that a
deliberately wrong mapping (two weights of the same shape swapped) breaks the match, so the
comparison has the power to catch one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cosyvoice2_fixture import hift_config, read_fixture, released_state

from ttsframe.errors import UserError

ATOL, RTOL = 1e-6, 1e-4  # waveforms peak near 0.1, f0 near 30 Hz


def save_pt(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


# ---- HiFT -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hift_fixture():
    return read_fixture("hift")


@pytest.fixture(scope="module")
def hift(hift_fixture, tmp_path_factory):
    from ttsframe.vocoders.hift import load_hift_checkpoint

    state, _, kwargs = hift_fixture
    return load_hift_checkpoint(save_pt(state, tmp_path_factory.mktemp("hift") / "hift.pt"), hift_config(kwargs))


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
