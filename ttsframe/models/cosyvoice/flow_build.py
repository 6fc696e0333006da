"""`build_flow(fields)`: the flow decoder a config's fields describe (our DiT flow, or the released
CosyVoice 2 flow); the one place that knows both, so neither flow module imports the other."""

from __future__ import annotations

from ttsframe.models.cosyvoice.flow import CosyVoiceFlow
from ttsframe.models.cosyvoice.flow_config import FlowConfig
from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2Flow, CosyVoice2FlowConfig


def build_flow(fields: dict) -> CosyVoiceFlow | CosyVoice2Flow:
    """`CosyVoice2Flow` where the fields name architecture "cosyvoice2" (the released CosyVoice 2
    flow), else our DiT `CosyVoiceFlow` (whose configs name none)."""
    fields = dict(fields)
    if fields.get("architecture") == "cosyvoice2":
        return CosyVoice2Flow(CosyVoice2FlowConfig(**fields))
    if "architecture" in fields:
        raise ValueError(f"unknown flow architecture {fields['architecture']!r}; valid: cosyvoice2 (or none: the DiT)")
    return CosyVoiceFlow(FlowConfig(**fields))
