"""FlowConfig: the sizes, rates and training draws of CosyVoice's flow-matching decoder (`flow.py`).

Apart from the model so that the loss (`flow_loss.py`) and the presets read it without the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsframe.models.cosyvoice.flow_masks import check_mask_probs
from ttsframe.modules.transformer import TransformerConfig

_T_SCHEDULES = ("uniform", "cosine")
_SOURCES = ("noise", "mu")


@dataclass
class FlowConfig:
    n_speech: int  # speech-token vocabulary
    n_mels: int = 80
    token_rate: float = 25.0  # speech tokens per second
    mel_rate: float = 22050 / 256  # mel frames per second
    d_model: int = 512
    n_heads: int = 8
    encoder_layers: int = 6
    decoder_layers: int = 0  # transformer blocks at the mel rate after the length regulator, before mu
    estimator_layers: int = 12
    ffn_dim: int = 2048
    spk_dim: int = 256  # speaker embedding (e.g. Resemblyzer), L2-normalised
    dropout: float = 0.1
    activation: str = "gelu"
    time_dim: int = 256  # sinusoidal embedding of the flow time
    cfg_dropout: float = 0.2  # share of training rows with mu, speaker and prompt all dropped
    prompt_prob: float = 0.5  # share of rows given a prompt prefix of their own mel
    prompt_max_ratio: float = 0.3  # longest prompt prefix, as a share of the row's frames
    sigma_min: float = 1e-6
    prior_weight: float = 0.0  # weight of the prior loss, MSE(mu, x1) (flow_loss); 0: CosyVoice's loss
    source: str = "noise"  # x0 ~ N(0, I) ("noise": CosyVoice) or N(mu, I) ("mu": Grad-TTS's prior)
    speaker_mu: bool = False  # the encoder and decoder read the speaker (adaptive layer norm): mu is per voice
    t_schedule: str = "cosine"  # training draw of t: "uniform", or "cosine" (t = 1 - cos(pi u / 2))
    chunk_tokens: int = 15  # C: tokens per chunk of the chunk masks
    mask_probs: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)  # full, causal, chunk C, 2C

    def __post_init__(self):
        if self.t_schedule not in _T_SCHEDULES:
            raise ValueError(f"unknown t_schedule {self.t_schedule!r}; valid: {', '.join(_T_SCHEDULES)}")
        if self.source not in _SOURCES:
            raise ValueError(f"unknown source {self.source!r}; valid: {', '.join(_SOURCES)}")
        if self.decoder_layers < 0:
            raise ValueError(f"decoder_layers must be >= 0, got {self.decoder_layers}")
        if self.chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be >= 1, got {self.chunk_tokens}")
        check_mask_probs(self.mask_probs)

    @property
    def frames_per_token(self) -> float:
        return self.mel_rate / self.token_rate

    def transformer_config(self, n_layers: int, cond_dim: int | None) -> TransformerConfig:
        return TransformerConfig(d_model=self.d_model, n_heads=self.n_heads, n_layers=n_layers,
                                 ffn_dim=self.ffn_dim, dropout=self.dropout, causal=False,
                                 activation=self.activation, cond_dim=cond_dim)
