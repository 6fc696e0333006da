"""MELLE: autoregressive language model over continuous mel frames (no vector quantization).

Everything that is MELLE's own lives in this folder: model.py, latent.py, postnet.py,
presets.py, loss.py, generate.py, task.py (the Lightning task) + samples.py (what it renders at
validation), synthesizer.py (+ its release parts, the vocoder among them). The rest of ttsframe
reads only `SPEC` (through `ttsframe.models.registry.FAMILIES`).
"""

from ttsframe.models.spec import FamilySpec

SPEC = FamilySpec(
    name="melle",
    tasks={"melle": "ttsframe.models.melle.task:MelleTask"},
    synthesizer="ttsframe.models.melle.synthesizer:MelleSynthesizer",
    options="ttsframe.models.melle.generate:MelleSamplingOptions",
)

__all__ = ["SPEC"]
