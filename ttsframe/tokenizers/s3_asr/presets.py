"""Named S3-ASR tokenizer sizes. The phone table fixes `n_symbols`; `subsample` picks the token
rate (2 -> 50 Hz, 4 -> 25 Hz)."""

from __future__ import annotations

from typing import Callable

from ttsframe.tokenizers.s3_asr.model import S3AsrConfig


def s3_asr_tiny(n_symbols: int, subsample: int = 4) -> S3AsrConfig:
    """~2.4M parameters, 625 codes at 25 Hz. On one CPU core with the default TrainOptions (550
    steps, ~4 min) the built-in corpus gives a quantised dev phone error rate of 0.10 with 83% of
    the codes used (perplexity ~200); fsq_levels=(3,) * 8 gives 0.058 (6561 codes, perplexity
    ~380) at the cost of a 10x larger token vocabulary downstream (benchmarks/s3_tokenizer_probe.py).
    Each utterance's mean log-mel is subtracted first (``cmn``): on the 36-voice built-in corpus
    with SpecAugment the held-out voices' phone error rate goes from 0.460 to 0.413 (docs/recipes/cosyvoice.md)."""
    return S3AsrConfig(
        n_symbols=n_symbols,
        d_model=192,
        n_heads=4,
        layers_before=3,
        layers_after=2,
        ffn_dim=768,
        subsample=subsample,
        fsq_levels=(5, 5, 5, 5),  # 625 codes
        dropout=0.0,
        cmn=True,
    )


def s3_asr_base(n_symbols: int, subsample: int = 4) -> S3AsrConfig:
    """CosyVoice 2's tokenizer size: width 1280, 20 heads, 6 blocks before an FSQ of 8 dims x 3
    levels (6561 codes, 25 Hz), then 6 blocks standing in for the rest of its ASR model (~236M).
    CosyVoice 2 reads 128 mel bands; here the front end's 80."""
    return S3AsrConfig(
        n_symbols=n_symbols,
        d_model=1280,
        n_heads=20,
        layers_before=6,
        layers_after=6,
        ffn_dim=5120,
        subsample=subsample,
        fsq_levels=(3,) * 8,
        dropout=0.1,
    )


PRESETS: dict[str, Callable[..., S3AsrConfig]] = {
    "s3_asr_tiny": s3_asr_tiny,
    "s3_asr_base": s3_asr_base,
}


def get_preset(name: str, n_symbols: int, subsample: int = 4) -> S3AsrConfig:
    """The named preset's config; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown S3-ASR preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](n_symbols, subsample)
