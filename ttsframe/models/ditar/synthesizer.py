"""Zero-shot DiTAR synthesis: prompt wav + prompt text + target text -> log-mel -> wav.

`DiTARSynthesizer` is the mel families' `ttsframe.inference.mel_synthesis.MelFrameSynthesizer`
(frontend, prompt log-mel, vocoder, building from checkpoints or a release, the release files: a
DiTAR release holds what a MELLE one does) with DiTAR's part: the model, and its decoding
`generate.synthesize_mel` (the LM over [prompt text + target text ; prompt patches] with a KV cache,
LocDiT's reverse ODE per patch). An item's frame budget comes from its target text alone
(`DiTARSamplingOptions.max_frames`). Nothing here imports Lightning.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ttsframe.inference.mel_synthesis import MelFrameSynthesizer, load_weights
from ttsframe.models.ditar.generate import DiTARSamplingOptions, synthesize_mel
from ttsframe.models.ditar.model import DiTAR, DiTARConfig


class DiTARSynthesizer(MelFrameSynthesizer):
    """A trained `DiTAR` with the mel features, vocoder, frontend and vocabulary of its run
    (constructor arguments: `MelFrameSynthesizer`'s)."""

    FAMILY, TASK, NAME = "ditar", "ditar", "DiTAR"
    OPTIONS = DiTARSamplingOptions  # the sampling options dataclass of `synthesize`
    CHECKPOINT_STAGES = {"model_stage": "train_ditar"}  # from_checkpoints' checkpoint arguments, in order
    TITLE = "DiTAR zero-shot TTS"
    SUMMARY = ("Causal transformer over patches of continuous log-mel frames, with a local diffusion transformer "
               "that generates each patch (Jia et al., 2025), trained with ttsframe; a vocoder turns the mel "
               "into audio.")
    CARD_OPTIONS = ("ttsframe.models.ditar.generate",
                    "DiTARSamplingOptions(nfe=10, cfg_scale=1.0, temperature=1.0, solver='ddim', seed=0)")

    @classmethod
    def from_release(cls, path: str | Path, device: str = "auto") -> "DiTARSynthesizer":
        """From a release folder (see `ttsframe.release`)."""
        from ttsframe.release import release_of

        return release_of(cls, path, device)

    @staticmethod
    def build_model(config: dict, state_dict: dict[str, torch.Tensor], device) -> DiTAR:
        """`DiTAR(DiTARConfig(**config))` with `state_dict` loaded (strictly), in eval mode on `device`."""
        return load_weights(DiTAR(DiTARConfig(**config)), state_dict, device)

    def generate_mels(self, text_tokens: list[torch.Tensor], prompt_tokens: list[torch.Tensor],
                      prompt_mels: list[torch.Tensor], options: DiTARSamplingOptions) -> list[torch.Tensor]:
        """Target log-mel (T_i, M) per item, at most ``options.max_frames(L_i)`` frames: `synthesize_mel`."""
        return synthesize_mel(self.model, text_tokens, prompt_tokens, prompt_mels, options)

    @property
    def prompt_frames(self) -> int:
        """One whole patch (generation drops a partial last one)."""
        return self.model.config.patch_size

    def model_card_line(self) -> str:
        c = self.model.config
        n_params = sum(p.numel() for p in self.model.parameters())
        return (f"- DiTAR: {n_params / 1e6:.2f} M parameters; LM {c.n_layers} layers, width {c.d_model}, "
                f"{c.n_heads} heads, FFN {c.ffn_dim}; LocEnc {c.locenc_n_layers} x {c.locenc_d_model}, LocDiT "
                f"{c.locdit_n_layers} x {c.locdit_d_model}; patches of {c.patch_size} frames, {c.history} history "
                "patches")
