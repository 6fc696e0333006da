"""A seeded random s3_asr speech tokenizer saved to a folder, for tests that need one (no training)."""

from pathlib import Path

import torch

from ttsframe.tokenizers.s3_asr.features import AsrFeatureConfig
from ttsframe.tokenizers.s3_asr.io import save_tokenizer
from ttsframe.tokenizers.s3_asr.model import S3AsrConfig, S3AsrModel


def save_tiny_tokenizer(folder: Path) -> Path:
    """Writes a 9-code (FSQ 3 x 3), 25 Hz tokenizer of 7 phones to `folder` (seed 0); returns it."""
    torch.manual_seed(0)
    asr = S3AsrModel(S3AsrConfig(n_symbols=8, d_model=32, n_heads=2, layers_before=1, layers_after=1, ffn_dim=64,
                                 subsample=4, fsq_levels=(3, 3), dropout=0.0))
    save_tokenizer(folder, asr, tuple("abcdefg"), AsrFeatureConfig(), [])
    return folder
