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
    from ttsframe.vocoders.hift import HiFTConfig

    return HiFTConfig(n_mels=kwargs["in_channels"], sample_rate=kwargs["sampling_rate"],
                      channels=kwargs["base_channels"], f0_channels=kwargs["f0_channels"],
                      n_harmonics=kwargs["nb_harmonics"], sine_amp=kwargs["nsf_alpha"],
                      noise_std=kwargs["nsf_sigma"], voiced_threshold=kwargs["nsf_voiced_threshold"],
                      upsample_rates=kwargs["upsample_rates"], upsample_kernel_sizes=kwargs["upsample_kernel_sizes"],
                      istft_n_fft=kwargs["istft_params"]["n_fft"], istft_hop=kwargs["istft_params"]["hop_len"],
                      resblock_kernel_sizes=kwargs["resblock_kernel_sizes"],
                      resblock_dilations=kwargs["resblock_dilation_sizes"],
                      source_kernel_sizes=kwargs["source_resblock_kernel_sizes"],
                      source_dilations=kwargs["source_resblock_dilation_sizes"],
                      lrelu_slope=kwargs["lrelu_slope"], audio_limit=kwargs["audio_limit"])
