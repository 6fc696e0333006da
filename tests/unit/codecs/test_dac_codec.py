"""DAC: a tiny random model, weights from a checkpoint file or dac's cache, the offline error."""

import pytest
import torch

from ttsframe.codecs import build_codec
from ttsframe.codecs import dac as dac_module
from ttsframe.errors import ConfigError, UserError

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning"),
]
TINY = {"name": "dac", "pretrained": False, "device": "cpu"}


@pytest.fixture(scope="module")
def codec():
    return build_codec(TINY)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A weights file written by DAC itself (`DAC.save(path, package=False)`, the published format)."""
    torch.manual_seed(0)
    model = build_codec(TINY).model
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("weights") / "weights.pth"
    model.save(str(path), package=False)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def assert_weights(codec, state):
    loaded = codec.model.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


def test_loads_checkpoint_path(checkpoint):
    path, state = checkpoint
    codec = build_codec({"name": "dac", "checkpoint": str(path), "device": "cpu", "n_codebooks": 2})
    assert_weights(codec, state)
    assert (codec.sample_rate, codec.hop_length, codec.n_codebooks, codec.codebook_size) == (24000, 40, 2, 64)


def test_loads_from_dac_cache(checkpoint, tmp_path, monkeypatch):
    path, state = checkpoint
    monkeypatch.setenv("HOME", str(tmp_path))
    cached, _ = dac_module.cache_path("24khz", "8kbps")
    assert str(cached).startswith(str(tmp_path / ".cache" / "descript" / "dac"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    assert_weights(build_codec({"name": "dac", "model_type": "24khz", "device": "cpu"}), state)


def test_no_weights_offline_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))

    def offline(model_type, model_bitrate):
        raise ConnectionError("Failed to resolve 'github.com'")

    monkeypatch.setattr(dac_module, "_download", offline)
    with pytest.raises(UserError) as info:
        build_codec({"name": "dac", "model_type": "44khz", "device": "cpu"})
    message = str(info.value)
    expected = tmp_path / ".cache" / "descript" / "dac" / "weights_44khz_8kbps_0.0.1.pth"
    assert str(expected) in message and "https://github.com/descriptinc/descript-audio-codec/releases" in message
    with pytest.raises(ConfigError, match="valid: 44khz, 24khz, 16khz"):
        build_codec({"name": "dac", "model_type": "8khz"})


def test_bad_settings_and_files(checkpoint, tmp_path):
    path, _ = checkpoint
    with pytest.raises(ConfigError, match="this DAC has 4 codebooks"):
        build_codec({"name": "dac", "checkpoint": str(path), "device": "cpu", "n_codebooks": 5})
    bad = tmp_path / "plain_state_dict.pth"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(UserError, match="not a DAC weights file"):
        build_codec({"name": "dac", "checkpoint": str(bad)})


def test_shapes_frames_for_and_batch_padding(codec):
    torch.manual_seed(1)
    for n in (1, 39, 40, 41, 1201):
        codes = codec.encode(torch.randn(1, n) * 0.1)
        assert codes.shape == (1, 4, codec.frames_for(n)) and codes.max() < 64
        # odd strides make DAC's decoder a few samples short; decode pads to T * hop
        assert codec.decode(codes).shape == (1, codes.shape[-1] * 40)
    wav = torch.randn(2, 2400) * 0.1
    wav[1, 1500:] = 0
    codes = codec.encode(wav, torch.tensor([2400, 1500]))
    single = codec.encode(wav[1:, :1500])[0]
    n = single.shape[-1]
    # Not causal: only the frames within the receptive field of the shorter item's end may change.
    assert torch.equal(codes[1, :, : n - 4], single[:, : n - 4])
    assert codec.decode(codes[:, :2]).shape == (2, codes.shape[-1] * 40)
