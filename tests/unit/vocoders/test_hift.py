"""HiFT vocoder: registry, lengths, reproducible source noise, mel checks, and reading hift.pt files
(weight-norm namings, the GAN wrapper's prefix, keys that do not map). Its equivalence with
CosyVoice's own HiFT: tests/unit/models/cosyvoice/test_cosyvoice2_equivalence.py."""

import pytest
import torch
from cosyvoice2_fixture import hift_config, read_fixture

from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.vocoders import VOCODERS, Vocoder, build_vocoder
from ttsframe.vocoders.hift import HiFTGenerator, convert_hift_state, cosyvoice2_mel, load_hift_checkpoint, tiny

TINY_MEL = MelConfig(sample_rate=24000, n_fft=384, hop_length=96, win_length=384, fmax=8000.0)  # tiny(): hop 96


@pytest.fixture(scope="module")
def fixture():
    return read_fixture("hift")


def test_registered_and_reproducible():
    assert "hift" in VOCODERS
    torch.manual_seed(0)
    vocoder = build_vocoder("hift", TINY_MEL, preset="tiny")
    assert isinstance(vocoder, Vocoder) and vocoder.sample_rate == 24000
    mel = torch.randn(2, 80, 7) - 5
    wav = vocoder(mel)
    assert wav.shape == (2, 7 * 96) and wav.dtype == torch.float32 and wav.abs().max() <= 0.99
    torch.testing.assert_close(vocoder(mel), wav, rtol=0, atol=0)  # the source noise is seeded per call


def test_source_draws_come_from_the_generator():
    torch.manual_seed(0)
    generator = HiFTGenerator(tiny()).eval()
    mel = torch.randn(1, 80, 5) - 5
    with torch.no_grad():
        a = generator(mel, generator=torch.Generator().manual_seed(1))
        b = generator(mel, generator=torch.Generator().manual_seed(1))
        c = generator(mel, generator=torch.Generator().manual_seed(2))
        phase, noise = generator.draw_source_noise(1, 5, torch.Generator().manual_seed(1))
        d = generator(mel, phase=phase, noise=noise)
    assert noise.shape == (1, 5 * 96, 9) and torch.equal(a, b) and torch.equal(a, d) and not torch.equal(a, c)


def test_mel_configuration_is_checked():
    assert cosyvoice2_mel().hop_length == 480 and cosyvoice2_mel().sample_rate == 24000
    with pytest.raises(ConfigError, match="hop_length 256"):
        build_vocoder("hift", MelConfig())  # the released sizes want CosyVoice 2's 24 kHz, hop 480 mels
    with pytest.raises(ConfigError, match="unknown hift preset `huge`"):
        build_vocoder("hift", TINY_MEL, preset="huge")
    vocoder = build_vocoder("hift", TINY_MEL, preset="tiny")
    with pytest.raises(ValueError, match=r"expected log-mel \(B, 80, T\)"):
        vocoder(torch.zeros(1, 100, 3))
    with pytest.raises(ConfigError, match="mel configurations differ"):
        vocoder(torch.zeros(1, 80, 3), mel_config=cosyvoice2_mel())


def test_reads_hift_pt_in_every_naming(tmp_path, fixture):
    state, io, kwargs = fixture
    config = hift_config(kwargs)
    reference = convert_hift_state(state, config)
    old_names = {k.replace(".parametrizations.weight.original0", ".weight_g")
                 .replace(".parametrizations.weight.original1", ".weight_v"): v for k, v in state.items()}
    wrapped = {f"generator.{k}": v for k, v in state.items()}  # as the HiFiGan training wrapper saves it
    for variant in (old_names, wrapped):
        torch.save(variant, tmp_path / "hift.pt")
        loaded = load_hift_checkpoint(tmp_path / "hift.pt", config)
        for key, value in reference.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    torch.save(state, tmp_path / "hift.pt")
    vocoder = build_vocoder("hift", TINY_MEL, checkpoint=tmp_path / "hift.pt", preset="tiny")
    assert vocoder.source.endswith("hift.pt") and vocoder(io["mel"]).shape == io["wav"].shape


def test_keys_that_do_not_map_are_named(tmp_path, fixture):
    state, _, kwargs = fixture
    config = hift_config(kwargs)
    broken = {k: v for k, v in state.items() if not k.startswith("m_source.")}
    broken["f0_predictor.condnet.1.weight"] = torch.zeros(1)  # an ELU has no weights
    with pytest.raises(UserError, match=r"unexpected keys \(1\): f0_predictor\.condnet\.1\.weight; "
                                        r"missing keys \(2\): source\.merge\.bias, source\.merge\.weight"):
        convert_hift_state(broken, config)
    with pytest.raises(UserError, match=r"shape mismatches \(\d+\): .*conv_pre"):
        convert_hift_state(state)  # tiny weights, released sizes
    with pytest.raises(UserError, match="without its"):
        convert_hift_state({"conv_pre.weight_g": torch.ones(1)}, config)
    with pytest.raises(UserError, match="no such file"):
        load_hift_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable CosyVoice 2 hift.pt"):
        load_hift_checkpoint(tmp_path / "junk.pt")
