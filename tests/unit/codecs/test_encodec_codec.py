"""EnCodec 24 kHz: weights from a checkpoint file or the hub cache, the offline error, shapes."""

import urllib.error

import pytest
import torch

from ttsframe.codecs import build_codec
from ttsframe.codecs import encodec as encodec_module
from ttsframe.errors import ConfigError, UserError

pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")


@pytest.fixture(scope="module")
def codec():
    return build_codec({"name": "encodec", "pretrained": False, "device": "cpu", "bandwidth": 1.5})


@pytest.fixture(scope="module")
def checkpoint(codec, tmp_path_factory):
    """A state dict in the published format (what encodec_24khz-d7cc33bc.th holds), random weights."""
    torch.manual_seed(0)
    state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
             for k, v in codec.model.state_dict().items()}
    path = tmp_path_factory.mktemp("weights") / encodec_module.CHECKPOINT_NAME
    torch.save(state, path)
    return path, state


def assert_weights(codec, state):
    loaded = codec.model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_loads_checkpoint_path(checkpoint):
    path, state = checkpoint
    codec = build_codec({"name": "encodec", "checkpoint": str(path), "device": "cpu", "bandwidth": 3})
    assert_weights(codec, state)
    assert codec.n_codebooks == 4 and codec.describe()["bandwidth"] == 3.0


def test_loads_from_hub_cache(checkpoint, tmp_path, monkeypatch):
    path, state = checkpoint
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / encodec_module.CHECKPOINT_NAME).write_bytes(path.read_bytes())
    assert_weights(build_codec({"name": "encodec", "device": "cpu"}), state)


def test_no_weights_offline_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, dest):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(encodec_module, "_download", offline)
    expected = tmp_path / "hub" / "checkpoints" / "encodec_24khz-d7cc33bc.th"
    with pytest.raises(UserError) as info:
        build_codec({"name": "encodec", "device": "cpu"})
    message = str(info.value)
    assert str(expected) in message and encodec_module.CHECKPOINT_URL in message and "codec.checkpoint=" in message
    with pytest.raises(UserError, match="no such file"):
        build_codec({"name": "encodec", "checkpoint": str(tmp_path / "missing.th")})


def test_bad_settings_and_files(tmp_path):
    with pytest.raises(ConfigError, match="supports 1.5, 3.0, 6.0, 12.0, 24.0"):
        build_codec({"name": "encodec", "bandwidth": 5, "pretrained": False})
    bad = tmp_path / "bad.th"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(UserError, match="not an EnCodec 24 kHz state dict"):
        build_codec({"name": "encodec", "checkpoint": str(bad), "device": "cpu"})


def test_shapes_frames_for_and_batch_padding(codec):
    torch.manual_seed(1)
    assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks, codec.codebook_size) == (24000, 75.0, 2, 1024)
    for n in (320, 321, 1000, 2560):
        assert codec.encode(torch.randn(1, n) * 0.1).shape == (1, 2, codec.frames_for(n))
    assert [codec.frames_for(n) for n in (0, 1, 320, 321)] == [0, 1, 1, 2]
    wav = torch.randn(2, 4800) * 0.1
    wav[1, 3000:] = 0
    codes = codec.encode(wav, torch.tensor([4800, 3000]))
    single = codec.encode(wav[1:, :3000])[0]
    n = single.shape[-1]
    # Causal model: padding changes at most the last (partial) frame of the shorter item.
    assert torch.equal(codes[1, :, : n - 1], single[:, : n - 1])
    out = codec.decode(codes)
    assert out.shape == (2, codes.shape[-1] * 320) and torch.isfinite(out).all()
    assert codec.decode(codes[:, :1]).shape == out.shape  # fewer codebooks decode too
