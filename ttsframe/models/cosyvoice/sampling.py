"""`CosyVoiceSamplingOptions`: one frozen dataclass for the whole synthesis (LM sampling + flow ODE)."""

from __future__ import annotations

from dataclasses import dataclass

from ttsframe.models.cosyvoice.lm_generate import LMSamplingOptions

FLOW_SCHEDULES = ("cosine", "linear")


@dataclass(frozen=True)
class CosyVoiceSamplingOptions:
    """How to sample the speech tokens and how to solve the flow.

    Attributes:
        temperature, top_p, top_k, repetition_window, tau_r: the LM's token sampling
            (`LMSamplingOptions`; CosyVoice's values: top-p 0.8, top-k 25, window 10, tau_r 0.1).
        min_token_text_ratio, max_token_text_ratio: speech tokens per target text symbol before
            which eos is suppressed / after which a row stops. Phonemes, not CosyVoice's BPE
            pieces: ~1.5-2 tokens per symbol at 25 Hz in the built-in corpus.
        flow_steps: Euler steps of the flow ODE (NFE is twice this with guidance); 0 with a flow
            whose source is N(mu, I) (`FlowConfig.source`) returns mu + flow_temperature * noise.
        cfg_scale: classifier-free guidance weight w of the flow; 0: conditional only.
        flow_schedule: "cosine" or "linear" time grid.
        flow_temperature: scale of the flow's starting noise (1: the trained distribution).
        seed: seeds the LM's token draws and the flow's noise.
    """

    temperature: float = 1.0
    top_p: float = 0.8
    top_k: int = 25
    repetition_window: int = 10
    tau_r: float = 0.1
    min_token_text_ratio: float = 0.5
    max_token_text_ratio: float = 6.0
    flow_steps: int = 10
    cfg_scale: float = 0.7
    flow_schedule: str = "cosine"
    flow_temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.flow_steps < 0:
            raise ValueError(f"flow_steps must be >= 0, got {self.flow_steps}")
        if self.flow_temperature < 0:
            raise ValueError(f"flow_temperature must be >= 0, got {self.flow_temperature}")
        if self.cfg_scale < 0:
            raise ValueError(f"cfg_scale must be >= 0, got {self.cfg_scale}")
        if self.flow_schedule not in FLOW_SCHEDULES:
            raise ValueError(f"flow_schedule {self.flow_schedule!r}; valid: {', '.join(FLOW_SCHEDULES)}")
        self.lm_options()  # validates the LM fields

    def lm_options(self) -> LMSamplingOptions:
        return LMSamplingOptions(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                                 repetition_window=self.repetition_window, tau_r=self.tau_r,
                                 min_token_text_ratio=self.min_token_text_ratio,
                                 max_token_text_ratio=self.max_token_text_ratio, seed=self.seed)
