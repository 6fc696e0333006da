"""Inference: trained models -> speech. No Lightning import anywhere in this package.

One synthesizer class per model family, registered in `SYNTHESIZERS` (imported when used). The
synthesize and release stages, `ttsframe.load_release` and the `synthesize` command pick the
class by family (the run's `model.family`, a release's `release.family`) and use only this:

    FAMILY               the family name (checkpoints' `hyper_parameters.family`)
    OPTIONS              its frozen sampling-options dataclass (`synthesize(items, OPTIONS(...))`)
    CHECKPOINT_STAGES    {stage option: default train stage}; `from_checkpoints` takes one
                         checkpoint per entry, in this order, then (shard_dir, codec_cfg, text_cfg)
    USES_VOCODER         True: `from_checkpoints(..., vocoder=...)` takes a mel vocoder
    synthesize(items, options) -> list of (T_i,) float32 at `sample_rate`
    resynthesize(wavs, sample_rate) -> the recordings through the codec / vocoder only
    write_release_files(out_dir), read_release(root, config, device), card_lines(),
    TITLE, SUMMARY, CARD_OPTIONS   (see `ttsframe.release`)
"""

from __future__ import annotations

import importlib

from ttsframe.errors import UserError
from ttsframe.inference.melle import MelleSynthesizer
from ttsframe.inference.valle import SynthesisItem, ValleSynthesizer

# family -> "module:Class" of its synthesizer.
SYNTHESIZERS: dict[str, str] = {
    "valle": "ttsframe.inference.valle:ValleSynthesizer",
    "melle": "ttsframe.inference.melle:MelleSynthesizer",
}


def synthesizer_class(family: str) -> type:
    """The synthesizer class of `family`; UserError listing the known families otherwise."""
    if family not in SYNTHESIZERS:
        raise UserError(f"no synthesizer for model family {family!r}; families: {', '.join(SYNTHESIZERS)}")
    module, _, name = SYNTHESIZERS[family].partition(":")
    return getattr(importlib.import_module(module), name)


__all__ = ["SYNTHESIZERS", "MelleSynthesizer", "SynthesisItem", "ValleSynthesizer", "synthesizer_class"]
