"""Named sizes of CosyVoice's speech LM. The text vocabulary and the speech tokenizer fix the first two
arguments; the cosyvoice1 presets also take the speaker embedding size (192: CAM++'s)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ttsframe.models.cosyvoice.lm import LMConfig


def lm_tiny(n_text: int, n_speech: int, spk_dim: int = 192) -> LMConfig:
    """cosyvoice1 layout that trains on a CPU in seconds; for tests and the toy recipe."""
    return LMConfig(style="cosyvoice1", n_text=n_text, n_speech=n_speech, d_model=64, n_heads=4, n_layers=2,
                    ffn_dim=256, dropout=0.0, text_encoder_layers=1, spk_dim=spk_dim)


def lm_cpu(n_text: int, n_speech: int, spk_dim: int = 192) -> LMConfig:
    """cosyvoice1 layout sized for the recipe's 2-core CPU run (~2.5 M parameters, ~0.3 s a step
    of 20 utterances): width 192, 4 causal layers after a 2-layer text encoder, dropout 0.1 (the
    built-in corpus is small enough to memorise)."""
    return LMConfig(style="cosyvoice1", n_text=n_text, n_speech=n_speech, d_model=192, n_heads=3, n_layers=4,
                    ffn_dim=768, dropout=0.1, text_encoder_layers=2, spk_dim=spk_dim)


def lm_base(n_text: int, n_speech: int, spk_dim: int = 192) -> LMConfig:
    """CosyVoice-300M's LM: a 6-layer text encoder, then 14 causal layers, width 1024, FFN 4096."""
    return LMConfig(style="cosyvoice1", n_text=n_text, n_speech=n_speech, d_model=1024, n_heads=16,
                    n_layers=14, ffn_dim=4096, dropout=0.1, text_encoder_layers=6, spk_dim=spk_dim)


def lm_qwen2_tiny(n_text: int, n_speech: int) -> LMConfig:
    """A two-layer Qwen2 with grouped-query attention; trains on a CPU in seconds."""
    return LMConfig(style="cosyvoice2", n_text=n_text, n_speech=n_speech, d_model=64, n_heads=4, n_kv_heads=2,
                    n_layers=2, ffn_dim=128, dropout=0.0, rope_base=1e6, norm_eps=1e-6)


def lm_qwen2_base(n_text: int, n_speech: int) -> LMConfig:
    """CosyVoice 2's LM, Qwen2.5-0.5B's shape: width 896, 24 layers, 14 heads (2 KV), FFN 4864."""
    return LMConfig(style="cosyvoice2", n_text=n_text, n_speech=n_speech, d_model=896, n_heads=14, n_kv_heads=2,
                    n_layers=24, ffn_dim=4864, dropout=0.0, rope_base=1e6, norm_eps=1e-6)


def lm_qwen2_release(n_text: int, n_speech: int) -> LMConfig:
    """lm_qwen2_base in CosyVoice 2's released output layout (`lm_release.py` loads its `llm.pt`)."""
    return dataclasses.replace(lm_qwen2_base(n_text, n_speech), release_layout=True)


PRESETS: dict[str, Callable[..., LMConfig]] = {
    "lm_tiny": lm_tiny,
    "lm_cpu": lm_cpu,
    "lm_base": lm_base,
    "lm_qwen2_tiny": lm_qwen2_tiny,
    "lm_qwen2_base": lm_qwen2_base,
    "lm_qwen2_release": lm_qwen2_release,
}


def get_preset(name: str, n_text: int, n_speech: int, **kwargs) -> LMConfig:
    """The named preset's config (``kwargs``: ``spk_dim`` of the cosyvoice1 ones); an unknown name
    lists the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown CosyVoice LM preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](n_text, n_speech, **kwargs)


@dataclass(frozen=True)
class FamilyPreset:
    """A `model.preset` of the cosyvoice family: one LM size and one flow size."""

    lm_preset: str
    flow_preset: str

    def flow(self, n_speech: int, token_rate: float, spk_dim: int | None, n_mels: int = 80):
        from ttsframe.models.cosyvoice.flow_presets import PRESETS as FLOW_PRESETS

        config = FLOW_PRESETS[self.flow_preset](n_speech, n_mels, token_rate)
        return dataclasses.replace(config, spk_dim=int(spk_dim or 0))

    def lm(self, n_text: int, n_speech: int, spk_dim: int | None) -> LMConfig:
        config = get_preset(self.lm_preset, n_text, n_speech)
        if config.style == "cosyvoice1":  # takes the shards' speaker embedding size
            config = dataclasses.replace(config, spk_dim=int(spk_dim or 0))
        return config


# model.preset -> (LM preset, flow preset); cosyvoice2_*: the Qwen2 LM without speaker embedding.
FAMILY_PRESETS: dict[str, FamilyPreset] = {
    "cosyvoice_tiny": FamilyPreset("lm_tiny", "flow_tiny"),
    "cosyvoice_cpu": FamilyPreset("lm_cpu", "flow_cpu"),
    "cosyvoice_base": FamilyPreset("lm_base", "flow_base"),
    "cosyvoice2_tiny": FamilyPreset("lm_qwen2_tiny", "flow_tiny"),
    "cosyvoice2_base": FamilyPreset("lm_qwen2_base", "flow_base"),
}


def family_preset(name: str) -> FamilyPreset:
    if name not in FAMILY_PRESETS:
        raise ValueError(f"unknown cosyvoice preset {name!r}; valid: {', '.join(FAMILY_PRESETS)}")
    return FAMILY_PRESETS[name]


def check_shards_and_overrides(index: dict | None, overrides: dict, valid: tuple[str, ...], part: str) -> dict:
    """The shards' index (it must hold speech tokens) after checking `overrides` against `valid`."""
    index = index or {}
    if not index.get("speech_vocab_size"):
        raise ValueError("the shards hold no speech tokens (speech_vocab_size missing from the index): "
                         "run the tokenize stage with a speech tokenizer")
    unknown = set(overrides) - set(valid)
    if unknown:
        raise ValueError(f"unknown CosyVoice {part} overrides {sorted(unknown)}; valid: {', '.join(valid)}")
    return index
