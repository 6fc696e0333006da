"""configs/data/*.yaml of the real corpora: valid against their parser's schema, with a usage header."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from ttsframe.config import load_group
from ttsframe.config.loading import CONFIG_DIR


@pytest.mark.parametrize(("choice", "corpus"), [
    ("ljspeech", "ljspeech"),
    ("libritts", "libritts"),
    ("libritts_r", "libritts"),
    ("vctk", "vctk"),
    ("generic", "generic"),
])
def test_data_config_loads(choice: str, corpus: str) -> None:
    cfg = OmegaConf.to_object(load_group("data", choice))
    assert cfg.corpus == corpus and cfg.root is None
    header = (CONFIG_DIR / "data" / f"{choice}.yaml").read_text(encoding="utf-8").splitlines()
    assert header[0].startswith("# ")
    assert any(f"make recipe=valle stage=0 data={choice} data." in line for line in header if line.startswith("#"))
