"""DiTAR: a causal language model over patches of continuous frames, with a local diffusion
transformer that generates each patch (Jia et al., 2025, "DiTAR: Diffusion Transformer
Autoregressive Modeling for Speech Generation").

Everything that is DiTAR's own lives in this folder: patches.py (the frame representation and
its grouping into patches), locenc.py (the aggregation encoder), locdit.py (the local diffusion
transformer), diffusion.py (the noise path, the v-prediction objective and the ODE sampler with
temperature and CFG), model.py (config and model), loss.py, generate.py (batched zero-shot
decoding with a KV cache), presets.py, task.py (the Lightning task) + samples.py (what it renders
at validation), synthesizer.py (+ its release parts, the vocoder among them). The rest of
ttsframe reads only `SPEC` (through `ttsframe.models.registry.FAMILIES`).
"""

from ttsframe.models.spec import FamilySpec

SPEC = FamilySpec(
    name="ditar",
    tasks={"ditar": "ttsframe.models.ditar.task:DiTARTask"},
    synthesizer="ttsframe.models.ditar.synthesizer:DiTARSynthesizer",
    options="ttsframe.models.ditar.generate:DiTARSamplingOptions",
)

__all__ = ["SPEC"]
