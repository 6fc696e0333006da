"""CosyVoice: text-speech LM over supervised speech tokens, conditional flow matching to log-mel, vocoder.

Everything that is CosyVoice's own lives in this folder: lm.py (+ qwen2.py, the cosyvoice2
backbone; lm_release.py, the released CosyVoice 2 `llm.pt` converter), lm_generate.py, flow.py (+ flow_estimator.py, flow_masks.py, flow_loss.py), the
released CosyVoice 2 flow's architecture and `flow.pt` converter (flow_cosyvoice2.py +
flow_conformer.py, flow_unet.py), presets.py, sampling.py (the synthesis options), task_lm.py and task_flow.py (the Lightning
tasks), synthesizer.py (+ its release parts) and streaming.py; cosyvoice2_config.py (the sizes in a CosyVoice 2
download's cosyvoice2.yaml) and import_cosyvoice2.py (that download as a release). The speech tokenizer it reads is
shared (`ttsframe.tokenizers`). The rest of ttsframe reads only `SPEC`.
"""

from ttsframe.models.spec import FamilySpec

SPEC = FamilySpec(
    name="cosyvoice",
    tasks={"cosyvoice_lm": "ttsframe.models.cosyvoice.task_lm:CosyVoiceLMTask",
           "cosyvoice_flow": "ttsframe.models.cosyvoice.task_flow:CosyVoiceFlowTask"},
    synthesizer="ttsframe.models.cosyvoice.synthesizer:CosyVoiceSynthesizer",
    options="ttsframe.models.cosyvoice.sampling:CosyVoiceSamplingOptions",
)

__all__ = ["SPEC"]
