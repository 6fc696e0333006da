"""Schema of the `eval` config group: which models score the synthesis (`ttsframe.eval`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AsrConfig:
    backend: str = "faster_whisper"  # faster_whisper | whisper (transformers) | hubert_ctc (transformers)
    # faster_whisper: a CTranslate2 folder, or null = the bundled tiny.en (hash-checked);
    # whisper / hubert_ctc: a local folder or a hub id already in the Hugging Face cache.
    model: str | None = None
    language: str = "en"
    beam_size: int = 5
    batch_size: int = 8


@dataclass
class SpeakerConfig:
    backend: str = "resemblyzer"  # resemblyzer (ships its weights) | wavlm_sv (transformers)
    model: str | None = None  # wavlm_sv: a local folder or a cached hub id


@dataclass
class EvalConfig:
    asr: AsrConfig = field(default_factory=AsrConfig)
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    mos: list[str] = field(default_factory=lambda: ["dnsmos", "utmos"])  # ttsframe.eval.mos.MOS_PREDICTORS
    # DNSMOS on clips under 9 s: windows of the looped clip to score (null: every 1-s hop, as
    # Microsoft's dnsmos_local.py; 1 is ~4x faster and moved OVRL by 0.01 on average here).
    dnsmos_looped_windows: int | None = 1
    utmos_repo: str | None = None  # a local clone of tarepan/SpeechMOS (weights in the torch hub cache)
    signal: bool = True  # MCD and log-F0 RMSE against the ground truth; PESQ / STOI on the resynthesis
    ground_truth: bool = True  # score the test recordings with the same models, side by side
    resynthesis: bool = True  # score the codec / vocoder resynthesis of the recordings (the ceiling)
    device: str = "auto"  # auto: cuda when available
    max_items: int | None = None  # score only the first N synthesized items (null: all)
