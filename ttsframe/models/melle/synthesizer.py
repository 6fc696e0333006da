"""Zero-shot MELLE synthesis: prompt wav + prompt text + target text -> log-mel -> wav.

`MelleSynthesizer` holds the parts synthesis needs (MELLE model, mel features, vocoder, text
frontend, vocabulary) and runs a batch of items through them:

    prompt text + target text -> symbols -> ids              (frontend, vocabulary)
    prompt wav -> mel rate, cut to max_prompt_seconds -> log-mel (Tp, M)   (MelCodec.encode)
    ids + prompt log-mel -> target log-mel (T, M)            (`synthesize_mel`, KV cache)
    target log-mel -> wav                                    (the vocoder)

One mel configuration is shared by the shards the model was trained on, the prompt features
and the vocoder (`check_mel_compatible`). The vocoder is any `ttsframe.vocoders.Vocoder`; by
default the universal HiFi-GAN when it is registered, installed and made for this mel
configuration, else Griffin-Lim (`default_vocoder`). All but MELLE's own part (its model, its
decoding, its card line) is the mel families' `ttsframe.inference.mel_synthesis.MelFrameSynthesizer`.

Build it from training outputs with `from_checkpoints`, or from a release folder with
`from_release` (= `ttsframe.load_release`). Nothing here imports Lightning.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ttsframe.inference.mel_synthesis import MelFrameSynthesizer, load_weights
from ttsframe.models.melle.generate import MelleSamplingOptions, synthesize_mel
from ttsframe.models.melle.model import Melle, MelleConfig


class MelleSynthesizer(MelFrameSynthesizer):
    """MELLE + mel features + vocoder + frontend + vocabulary, ready to synthesize.

    Args (see `MelFrameSynthesizer`):
        model: a trained `Melle`; mel_config: the mel configuration of its training shards;
        frontend, vocab: the text frontend and the training vocabulary; vocoder: None for
        `default_vocoder(mel_config)`; text_config, max_prompt_seconds.

    Raises:
        UserError: the model, the mel configuration, the vocoder and the vocabulary do not fit.
    """

    FAMILY, TASK, NAME = "melle", "melle", "MELLE"
    OPTIONS = MelleSamplingOptions  # the sampling options dataclass of `synthesize`
    CHECKPOINT_STAGES = {"model_stage": "train_melle"}  # from_checkpoints' checkpoint arguments, in order
    TITLE = "MELLE zero-shot TTS"
    SUMMARY = ("Autoregressive transformer over continuous log-mel frames with latent sampling, a stop head "
               "and a post-net (Meng et al., 2024), trained with ttsframe; a vocoder turns the mel into audio.")
    CARD_OPTIONS = ("ttsframe.models.melle.generate", "MelleSamplingOptions(temperature=1.0, seed=0)")

    @classmethod
    def from_release(cls, path: str | Path, device: str = "auto") -> "MelleSynthesizer":
        """From a release folder (see `ttsframe.release`)."""
        from ttsframe.release import release_of

        return release_of(cls, path, device)

    @staticmethod
    def build_model(config: dict, state_dict: dict[str, torch.Tensor], device) -> Melle:
        """`Melle(MelleConfig(**config))` with `state_dict` loaded (strictly), in eval mode on `device`."""
        return load_weights(Melle(MelleConfig(**config)), state_dict, device)

    def generate_mels(self, text_tokens: list[torch.Tensor], prompt_tokens: list[torch.Tensor],
                      prompt_mels: list[torch.Tensor], options: MelleSamplingOptions) -> list[torch.Tensor]:
        """Target log-mel (T_i, M) per item: `synthesize_mel` (KV cache, post-net)."""
        return synthesize_mel(self.model, text_tokens, prompt_tokens, prompt_mels, options)

    @property
    def prompt_frames(self) -> int:
        """One decoder step: `reduction_factor` frames."""
        return self.model.config.reduction_factor

    def model_card_line(self) -> str:
        c = self.model.config
        n_params = sum(p.numel() for p in self.model.parameters())
        return (f"- MELLE: {n_params / 1e6:.2f} M parameters, {c.n_layers} layers, width {c.d_model}, {c.n_heads} "
                f"heads, FFN {c.ffn_dim}, reduction factor {c.reduction_factor}")
