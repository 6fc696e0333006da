"""Inference: trained models -> speech. No Lightning import anywhere in this package."""

from ttsframe.inference.valle import SynthesisItem, ValleSynthesizer

__all__ = ["SynthesisItem", "ValleSynthesizer"]
