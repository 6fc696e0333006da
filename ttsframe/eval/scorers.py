"""The models of one evaluation, built once from the `eval` config, and how one system is scored.

A *system* is one kind of audio for the same test sentences: `ground_truth` (the recordings),
`resynthesis` (the recordings through the codec or vocoder only: the ceiling of the model) and
`synthesis` (the model's zero-shot output). Every system is scored by the same models, at one
rate (EVAL_RATE: every ASR, speaker and MOS model here takes 16 kHz):

    hypothesis, wer, cer          ASR transcript vs the text (`ttsframe.eval.wer`)
    sim_to_prompt                 speaker-embedding cosine to the voice prompt
    sim_to_reference              ... to the ground-truth recording (resynthesis, synthesis)
    mcd, log_f0_rmse, voicing_error   vs the ground truth, DTW-aligned (resynthesis, synthesis)
    pesq, stoi                    vs the ground truth, sample-aligned (resynthesis only)
    dnsmos_*, utmos               predicted MOS
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttsframe.errors import ConfigError

EVAL_RATE = 16000
SYSTEMS = ("ground_truth", "resynthesis", "synthesis")
MIN_SECONDS = 0.1  # shorter audio (a model that stopped at once) gets NaN for SIM, MOS and signal metrics


@dataclass
class Scorers:
    asr: Any  # ttsframe.eval.asr backend
    speaker: Any  # ttsframe.eval.speaker encoder
    mos: dict[str, Any]  # name -> ttsframe.eval.mos predictor
    skipped: dict[str, str]  # metric -> why it was not computed
    signal: bool

    @classmethod
    def from_config(cls, cfg) -> "Scorers":
        """Builds the models an `eval` config names (DictConfig or EvalConfig)."""
        from ttsframe.eval.asr import asr_from_config
        from ttsframe.eval.mos import MOS_PREDICTORS, MetricUnavailable, build_mos_predictor
        from ttsframe.eval.speaker import build_speaker_encoder

        asr = asr_from_config(cfg.asr, cfg.device)
        speaker = build_speaker_encoder(cfg.speaker.backend, model=cfg.speaker.model, device=cfg.device)
        mos, skipped = {}, {}
        for name in cfg.mos:
            if name not in MOS_PREDICTORS:
                raise ConfigError(f"eval.mos: unknown predictor {name!r}; valid: {', '.join(MOS_PREDICTORS)}")
            options = {"utmos": {"repo_dir": cfg.utmos_repo, "device": cfg.device},
                       "dnsmos": {"looped_windows": cfg.dnsmos_looped_windows}}.get(name, {})
            try:
                mos[name] = build_mos_predictor(name, **options)
            except MetricUnavailable as e:
                skipped[name] = str(e)
                print(f"evaluate: {name} skipped: {e}")
        return cls(asr, speaker, mos, skipped, bool(cfg.signal))

    def protocol(self) -> dict:
        """What produced the numbers, for metrics.json."""
        from ttsframe.eval import wer

        return {
            "sample_rate": EVAL_RATE,
            "asr": self.asr.describe(),
            "text_normalization": (wer.__doc__ or "").strip().splitlines()[0],
            "speaker": self.speaker.describe(),
            "mos": {name: predictor.describe() for name, predictor in self.mos.items()},
            "signal": ({"mcd": "dB, DTW-aligned mel cepstra (ttsframe.eval.signal_metrics)",
                        "log_f0_rmse": "natural-log F0, frames voiced in both, on the MCD alignment",
                        "pesq": "wide-band, resynthesis only", "stoi": "resynthesis only"} if self.signal else None),
        }

    def score(self, system: str, audio: list[np.ndarray], texts: list[str], prompt_embeddings: np.ndarray,
              references: list[np.ndarray] | None = None,
              reference_embeddings: np.ndarray | None = None, embeddings: np.ndarray | None = None) -> list[dict]:
        """Per item metrics of one system's audio (all at EVAL_RATE).

        Args:
            audio: (T_i,) per item; texts: what each item should say.
            prompt_embeddings: (N, D) speaker embeddings of the prompts.
            references, reference_embeddings: the ground truth, for the systems compared to it.
            embeddings: (N, D) speaker embeddings of `audio` when already computed.
        """
        from ttsframe.eval.signal_metrics import signal_metrics
        from ttsframe.eval.speaker import cosine_similarity
        from ttsframe.eval.wer import error_rates

        usable = [len(wav) >= MIN_SECONDS * EVAL_RATE for wav in audio]
        hypotheses = self.asr.transcribe(audio, EVAL_RATE)
        rates = error_rates(texts, hypotheses)
        rows = [{"hypothesis": h, "wer": u["wer"], "cer": u["cer"]} for h, u in zip(hypotheses, rates.per_utterance)]
        embeddings = self.embed(audio, usable) if embeddings is None else embeddings
        for row, similarity in zip(rows, cosine_similarity(embeddings, prompt_embeddings)):
            row["sim_to_prompt"] = float(similarity)
        if reference_embeddings is not None:
            for row, similarity in zip(rows, cosine_similarity(embeddings, reference_embeddings)):
                row["sim_to_reference"] = float(similarity)
        for name, predictor in self.mos.items():
            scores = predictor.score([wav for wav, ok in zip(audio, usable) if ok], EVAL_RATE)
            kept = iter(scores)
            for row, ok in zip(rows, usable):
                row.update({_mos_key(name, k): v for k, v in next(kept).items()} if ok else {})
        if self.signal and references is not None:
            aligned = system == "resynthesis"
            for row, wav, ref, ok in zip(rows, audio, references, usable):
                if ok and len(ref) >= MIN_SECONDS * EVAL_RATE:
                    row.update(signal_metrics(ref, wav, EVAL_RATE, aligned=aligned))
        return [{k: _plain(v) for k, v in row.items()} for row in rows]

    def embed(self, audio: list[np.ndarray], usable: list[bool] | None = None) -> np.ndarray:
        """(N, D) speaker embeddings; rows of unusable (too short) audio are NaN."""
        usable = usable or [len(wav) >= MIN_SECONDS * EVAL_RATE for wav in audio]
        kept = [wav for wav, ok in zip(audio, usable) if ok]
        vectors = self.speaker.embed(kept, EVAL_RATE) if kept else np.zeros((0, 1), np.float32)
        out = np.full((len(audio), vectors.shape[1] if len(kept) else 1), np.nan, dtype=np.float32)
        out[np.asarray(usable, dtype=bool)] = vectors
        return out


def _mos_key(predictor: str, key: str) -> str:
    return predictor if key == predictor else f"{predictor}_{key}"


def _plain(value):
    """numpy scalars -> float; NaN -> None (JSON has no NaN)."""
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else round(float(value), 5)
    if isinstance(value, np.integer):
        return int(value)
    return value
