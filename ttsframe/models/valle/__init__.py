"""VALL-E: AR over the first codebook, NAR over the others.

Everything that is VALL-E's own lives in this folder: model.py (AR + NAR), presets.py, loss.py,
generate.py, task.py (the Lightning tasks) + samples.py (what they render at validation),
synthesizer.py (+ its release parts). The rest of ttsframe reads only `SPEC` (through
`ttsframe.models.registry.FAMILIES`).
"""

from ttsframe.models.spec import FamilySpec

SPEC = FamilySpec(
    name="valle",
    tasks={"valle_ar": "ttsframe.models.valle.task:ValleARTask",
           "valle_nar": "ttsframe.models.valle.task:ValleNARTask"},
    synthesizer="ttsframe.models.valle.synthesizer:ValleSynthesizer",
    options="ttsframe.modules.sampling:SamplingOptions",
)

__all__ = ["SPEC"]
