"""Named DiTAR sizes. The phoneme vocabulary (and the mel bins) come from the data.

Rates: on the default mel (22.05 kHz, hop 256: 86.1 frames/s) a patch of P = 4 frames makes the
LM step at 21.5 Hz, about a phoneme's rate; the paper's latents run at 40 Hz with the same P,
so its LM steps at 10 Hz.
"""

from __future__ import annotations

from typing import Callable

from ttsframe.models.ditar.model import DiTARConfig


def _local(width: int, heads: int, layers: int, ffn: int) -> dict:
    """LocEnc and LocDiT with the same sizes."""
    return {f"{stack}_{name}": value for stack in ("locenc", "locdit")
            for name, value in (("d_model", width), ("n_heads", heads), ("n_layers", layers), ("ffn_dim", ffn))}


def ditar_tiny(vocab_size: int, n_mels: int = 80) -> DiTARConfig:
    """A few tens of thousands of parameters: trains on a CPU in seconds; for tests and toys."""
    return DiTARConfig(vocab_size=vocab_size, n_mels=n_mels, patch_size=4, history=2, d_model=32, n_heads=2,
                       n_layers=2, ffn_dim=64, time_dim=32, dropout=0.0, **_local(32, 2, 1, 64))


def ditar_cpu(vocab_size: int, n_mels: int = 80) -> DiTARConfig:
    """About 2 M parameters: the default of a 2-core CPU run on the built-in corpus (P = 4 on
    80-band log-mel at 86 frames/s; LM steps at 21.5 Hz)."""
    return DiTARConfig(vocab_size=vocab_size, n_mels=n_mels, patch_size=4, history=2, d_model=128, n_heads=4,
                       n_layers=4, ffn_dim=512, time_dim=128, dropout=0.1, **_local(128, 4, 2, 512))


def ditar_base(vocab_size: int, n_mels: int = 80) -> DiTARConfig:
    """The paper's ballpark for a GPU cluster, as we read it: a 24-layer, 1024-wide LM (16 heads,
    FFN 4096) between a 4-layer LocEnc and a 4-layer LocDiT of the same width; P = 4, 2 history
    patches; about 0.43 B parameters."""
    return DiTARConfig(vocab_size=vocab_size, n_mels=n_mels, patch_size=4, history=2, d_model=1024, n_heads=16,
                       n_layers=24, ffn_dim=4096, time_dim=256, dropout=0.1, **_local(1024, 16, 4, 4096))


PRESETS: dict[str, Callable[..., DiTARConfig]] = {
    "ditar_tiny": ditar_tiny,
    "ditar_cpu": ditar_cpu,
    "ditar_base": ditar_base,
}


def get_preset(name: str, vocab_size: int, n_mels: int = 80) -> DiTARConfig:
    """The named preset's config; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown DiTAR preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](vocab_size, n_mels)
