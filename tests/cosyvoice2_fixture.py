"""Reading tests/fixtures/cosyvoice2 (made by scripts/make_cosyvoice2_fixture.py from CosyVoice's own code)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cosyvoice2"


def read_fixture(part: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """(reference state dict, inputs and outputs, the reference's constructor arguments) of one part."""
    with safe_open(str(FIXTURE / f"{part}.safetensors"), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        kwargs = json.loads(f.metadata()["kwargs"])
    state = {k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")}
    io = {k[len("io."):]: v for k, v in tensors.items() if k.startswith("io.")}
    return state, io, kwargs


def released_state(part: str) -> dict[str, torch.Tensor]:
    """Tensors on the meta device with the keys and shapes of the released `<part>.pt`."""
    shapes = json.loads((FIXTURE / f"{part}_keys.json").read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


def hift_config(kwargs: dict):
    """Our HiFTConfig for the reference HiFTGenerator's constructor arguments."""
    from ttsframe.vocoders.hift import reference_config

    return reference_config(kwargs)
