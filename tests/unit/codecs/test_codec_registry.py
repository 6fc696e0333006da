"""The codec registry: schemas for configs/codec/*.yaml, build_codec from any config form."""

import dataclasses

import pytest

from ttsframe.codecs import CODECS, Codec, build_codec, codec_schema
from ttsframe.config.loading import load_group
from ttsframe.errors import ConfigError


@pytest.mark.parametrize("name", sorted(CODECS))
def test_schema_starts_with_name_and_has_common_fields(name):
    schema = codec_schema(name)
    fields = [f.name for f in dataclasses.fields(schema)]
    assert fields[0] == "name" and schema().name == name
    assert {"device", "batch_seconds"} <= set(fields)


def test_unknown_codec_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown codec `soundstream`; valid codecs: dac, encodec, mel, semantic, spectral"):
        codec_schema("soundstream")
    with pytest.raises(ConfigError, match="needs `name:`"):
        build_codec({"bandwidth": 6})


def test_build_from_yaml_dict_and_dataclass():
    from ttsframe.codecs.mel_codec import Config

    node = load_group("codec", "mel", [("test", {"mel": {"n_mels": 100}, "device": "cpu"})])  # a DictConfig
    codec = build_codec(node)
    assert isinstance(codec, Codec) and codec.mel_config.n_mels == 100
    assert build_codec({"name": "mel", "device": "cpu"}).mel_config.n_mels == 80
    assert build_codec(Config(device="cpu")).frame_rate == 22050 / 256
    with pytest.raises(ConfigError, match=r"codec.mel: unknown key\(s\) \['hop'\]"):
        build_codec({"name": "mel", "mel": {"hop": 200}})


def test_spectral_yaml_builds_unfitted():
    codec = build_codec(load_group("codec", "spectral", [("test", {"device": "cpu"})]))
    assert codec.needs_fit and not codec.is_fitted
    assert (codec.n_codebooks, codec.codebook_size) == (8, 512)
