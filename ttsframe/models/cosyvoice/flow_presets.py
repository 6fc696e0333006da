"""Named sizes of the CosyVoice flow decoder. The speech-token vocabulary and rate come from the
speech tokenizer (CosyVoice 1: 4096 tokens at 50 Hz; CosyVoice 2: 6561 at 25 Hz)."""

from __future__ import annotations

import dataclasses
from typing import Callable

from ttsframe.models.cosyvoice.flow_config import FlowConfig


def flow_tiny(n_speech: int, n_mels: int = 80, token_rate: float = 25.0) -> FlowConfig:
    """Trains on a CPU in seconds; for tests and the toy recipe (chunks of 4 tokens). ~0.8 M
    parameters with 32 tokens (1.2 M with 4096)."""
    return FlowConfig(n_speech, n_mels, token_rate, d_model=96, n_heads=4, encoder_layers=2, estimator_layers=4,
                      ffn_dim=256, dropout=0.0, time_dim=64, chunk_tokens=4)


def flow_cpu(n_speech: int, n_mels: int = 80, token_rate: float = 25.0) -> FlowConfig:
    """The recipe's 2-core CPU flow: flow_tiny's sizes plus 2 blocks at the mel rate before mu
    (~1.2 M parameters, ~0.35 s a step of 6,000 frames), the prior loss (weight 1), the flow
    starting from N(mu, I) and a speaker-conditioned mu, so that mu becomes a regression estimate
    of the mel in the prompt's voice that the estimator refines (CosyVoice's N(0, I) start needs
    far more steps). Measured in docs/recipes/cosyvoice.md (benchmarks/cosyvoice_flow_probe.py). Three in four
    steps train the full mask that resynthesis and offline synthesis use (CosyVoice's even mix spends
    three in four on streaming masks, which a CPU budget cannot spare); one in four chunk C, so
    streaming still works."""
    return dataclasses.replace(flow_tiny(n_speech, n_mels, token_rate), prior_weight=1.0, source="mu",
                               speaker_mu=True, decoder_layers=2, mask_probs=(0.75, 0.0, 0.25, 0.0))


def flow_base(n_speech: int, n_mels: int = 80, token_rate: float = 25.0) -> FlowConfig:
    """CosyVoice's size: a 6-layer encoder at width 512 (8 heads, FFN 2048) over the tokens and a
    12-layer estimator (the DiT here, CosyVoice's conformer U-Net there), dropout 0.1, chunks of
    15 tokens (CosyVoice 2). ~73 M parameters with 4096 tokens (74 M with 6561)."""
    return FlowConfig(n_speech, n_mels, token_rate, d_model=512, n_heads=8, encoder_layers=6, estimator_layers=12,
                      ffn_dim=2048, dropout=0.1, time_dim=256, chunk_tokens=15)


PRESETS: dict[str, Callable[..., FlowConfig]] = {
    "flow_tiny": flow_tiny,
    "flow_cpu": flow_cpu,
    "flow_base": flow_base,
}


def get_preset(name: str, n_speech: int, n_mels: int = 80, token_rate: float = 25.0) -> FlowConfig:
    """The named preset's config; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown flow preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](n_speech, n_mels, token_rate)
