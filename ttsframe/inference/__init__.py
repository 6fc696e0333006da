"""Inference: what every model family's synthesizer shares. No Lightning import anywhere here.

    request.py     `SynthesisItem` (one zero-shot request) and the prompt / decoding limits
    prompt.py      prompt preparation (resample, cut with its transcript, ids)
    text.py        the frontend check and text -> ids
    checkpoint.py  training checkpoints, vocabularies, codec configs, safetensors, release files
    mel_synthesis.py  what the mel-frame families' synthesizers (MELLE, DiTAR) share: part checks,
                   prompts -> log-mel -> vocoder, building from checkpoints / releases, release files
    timing.py      seconds per part of a synthesis call
    mode.py        `evaluating(*models)`: eval mode and no autograd around a generate call

The synthesizers themselves are their families' (`ttsframe/models/<family>/synthesizer.py`),
found through `ttsframe.models.registry.family(name).synthesizer_class()`. The synthesize and
release stages, `ttsframe.load_release` and the `synthesize` command use only this of one:

    FAMILY               the family name (checkpoints' `hyper_parameters.family`)
    OPTIONS              its frozen sampling-options dataclass (`synthesize(items, OPTIONS(...))`)
    CHECKPOINT_STAGES    {stage option: default train stage}; `from_checkpoints` takes one
                         checkpoint per entry, in this order, then (shard_dir, codec_cfg, text_cfg)
    USES_VOCODER         True: `from_checkpoints(..., vocoder=...)` takes a mel vocoder
    synthesize(items, options) -> list of (T_i,) float32 at `sample_rate`
    resynthesize(wavs, sample_rate, options) -> the recordings through the codec / vocoder only
                         (with the synthesis's options where the family's decoder samples)
    write_release_files(out_dir), read_release(root, config, device), card_lines(),
    TITLE, SUMMARY, CARD_OPTIONS   (see `ttsframe.release`)
"""

from __future__ import annotations

from ttsframe.inference.request import SynthesisItem

__all__ = ["SynthesisItem"]
