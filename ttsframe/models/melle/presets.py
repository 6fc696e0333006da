"""Named MELLE sizes. The phoneme vocabulary (and the mel bins) come from the data."""

from __future__ import annotations

from typing import Callable

from ttsframe.models.melle.model import MelleConfig


def melle_tiny(vocab_size: int, n_mels: int = 80) -> MelleConfig:
    """Trains on a CPU in seconds; for tests and the toy recipe."""
    return MelleConfig(
        vocab_size=vocab_size,
        n_mels=n_mels,
        d_model=64,
        n_heads=4,
        n_layers=2,
        ffn_dim=256,
        dropout=0.0,
        prenet_dim=64,
        prenet_dropout=0.2,
        latent_hidden=64,
        postnet_channels=64,
    )


def melle_cpu(vocab_size: int, n_mels: int = 80) -> MelleConfig:
    """About 2 M parameters, as `ditar_cpu`: a 4-layer x 128 decoder for a 2-core CPU run, with the
    paper's pre-net dropout 0.5 (Tacotron's: an AR model that cannot copy its last frame reads the text)."""
    return MelleConfig(
        vocab_size=vocab_size,
        n_mels=n_mels,
        d_model=128,
        n_heads=4,
        n_layers=4,
        ffn_dim=512,
        dropout=0.1,
        prenet_dim=128,
        prenet_dropout=0.5,
        latent_hidden=128,
        postnet_channels=128,
    )


def melle_base(vocab_size: int, n_mels: int = 80) -> MelleConfig:
    """The paper's decoder, which follows VALL-E's: 12 layers, 16 heads, width 1024, FFN 4096,
    dropout 0.1; Tacotron-style pre-net (256, dropout 0.5) and 5-layer post-net (kernel 5)."""
    return MelleConfig(
        vocab_size=vocab_size,
        n_mels=n_mels,
        d_model=1024,
        n_heads=16,
        n_layers=12,
        ffn_dim=4096,
        dropout=0.1,
        prenet_dim=256,
        prenet_dropout=0.5,
        latent_hidden=256,
        postnet_channels=256,
    )


PRESETS: dict[str, Callable[..., MelleConfig]] = {
    "melle_tiny": melle_tiny,
    "melle_cpu": melle_cpu,
    "melle_base": melle_base,
}


def get_preset(name: str, vocab_size: int, n_mels: int = 80) -> MelleConfig:
    """The named preset's config; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown MELLE preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](vocab_size, n_mels)
