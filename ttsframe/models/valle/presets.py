"""Named VALL-E sizes. The codec and the phoneme vocabulary fix the first three arguments."""

from __future__ import annotations

from typing import Callable

from ttsframe.models.valle.model import ValleConfig


def valle_tiny(vocab_size: int, n_codebooks: int, codebook_size: int) -> ValleConfig:
    """Trains on a CPU in seconds; for tests and the toy recipe."""
    return ValleConfig(
        vocab_size=vocab_size,
        n_codebooks=n_codebooks,
        codebook_size=codebook_size,
        d_model=64,
        n_heads=4,
        n_layers=2,
        ffn_dim=256,
        dropout=0.0,
    )


def valle_base(vocab_size: int, n_codebooks: int, codebook_size: int) -> ValleConfig:
    """The paper's size: 12 layers, 16 heads, width 1024, FFN 4096, dropout 0.1."""
    return ValleConfig(
        vocab_size=vocab_size,
        n_codebooks=n_codebooks,
        codebook_size=codebook_size,
        d_model=1024,
        n_heads=16,
        n_layers=12,
        ffn_dim=4096,
        dropout=0.1,
    )


PRESETS: dict[str, Callable[[int, int, int], ValleConfig]] = {
    "valle_tiny": valle_tiny,
    "valle_base": valle_base,
}


def get_preset(name: str, vocab_size: int, n_codebooks: int, codebook_size: int) -> ValleConfig:
    """The named preset's config; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown VALL-E preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](vocab_size, n_codebooks, codebook_size)
