"""Speaker similarity (SIM): cosine between speaker embeddings of the prompt and the synthesis.

Three encoders, one registry (`SPEAKER_ENCODERS`), built with `build_speaker_encoder`:

* `resemblyzer`: the GE2E d-vector encoder whose weights ship in the `resemblyzer` wheel
  (`resemblyzer/pretrained.pt`), so it always works offline; the default, and fast on CPU.
  Each clip is volume-normalised and has its long silences cut by resemblyzer's webrtcvad
  trimming (the whole clip is kept when the VAD finds no speech), then embedded as the
  normalised mean of 1.6 s partial windows.
* `wavlm_sv`: a WavLM x-vector model through `transformers` (`WavLMForXVector`, default
  microsoft/wavlm-base-plus-sv), from a local folder or a hub id already in the Hugging Face
  cache. VALL-E and Seed-TTS report SIM with WavLM-large + ECAPA-TDNN from microsoft/UniSpeech,
  which transformers cannot load: numbers from this backend follow the same idea (a WavLM
  speaker-verification model) but are not the papers' exact protocol.
* `campplus`: the CAM++ model (192-d) that CosyVoice conditions on, from the `campplus.onnx` of a
  CosyVoice pretrained model folder (`model` = its path; not shipped), with CosyVoice's features:
  mean-normalised 80-bin kaldi fbank (see ttsframe/eval/campplus.py).

Every encoder returns L2-normalised float32 rows, one per clip; an empty or all-zero clip
gives a row of NaN (its similarity is undefined, never a made-up number).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ttsframe.codecs.base import resolve_device
from ttsframe.data.audio import clips_at_rate
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.campplus import CamPlusPlusEncoder
from ttsframe.eval.embedding_rows import has_signal, unit_rows
from ttsframe.eval.provenance import package_version

ENCODER_RATE = 16000  # both encoders take 16 kHz audio
DEFAULT_WAVLM = "microsoft/wavlm-base-plus-sv"
PARTIALS_PER_BATCH = 64  # resemblyzer windows per LSTM call


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine: a, b (N, D) -> (N,) float32 (a (D,) and b (D,) give shape (1,))."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cosine_similarity: shapes {a.shape} and {b.shape} differ")
    dot = np.sum(a * b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dot / norms).astype(np.float32)


class ResemblyzerEncoder:
    """GE2E d-vectors (256-d) from the weights in the resemblyzer wheel, or `model`: another .pt of it."""

    dim = 256

    def __init__(self, model: str | None = None, device: str = "auto"):
        try:
            with warnings.catch_warnings():  # resemblyzer imports a deprecated scipy.ndimage path
                warnings.simplefilter("ignore", DeprecationWarning)
                import resemblyzer
        except ImportError as e:
            raise UserError(f"speaker backend resemblyzer: `pip install resemblyzer webrtcvad-wheels` ({e})") from e

        self.device = resolve_device(device)
        self.weights = str(Path(model) if model else Path(resemblyzer.__file__).parent / "pretrained.pt")
        if not os.path.isfile(self.weights):
            raise UserError(f"resemblyzer weights not found: {self.weights}")
        self._resemblyzer = resemblyzer
        self.encoder = resemblyzer.VoiceEncoder(device=self.device, verbose=False, weights_fpath=self.weights)

    @torch.inference_mode()
    def embed(self, wavs: list[np.ndarray], sample_rate: int) -> np.ndarray:
        """Clips (T_i,) at `sample_rate` -> (N, 256) float32, unit rows (NaN rows for silent clips).

        Resemblyzer's `embed_utterance`, with the partial windows of every clip run through the
        LSTM together (`PARTIALS_PER_BATCH` at a time) instead of one clip's at a time: the LSTM's
        steps are sequential, so the batch size is what makes it fast on a CPU."""
        out = np.full((len(wavs), self.dim), np.nan, np.float32)
        partials, owners = [], []  # (160, 40) log-mel windows; the clip each belongs to
        for n, wav in enumerate(clips_at_rate(wavs, sample_rate, ENCODER_RATE)):
            if not has_signal(wav):
                continue
            speech = self._resemblyzer.preprocess_wav(wav)  # volume up to -30 dBFS, webrtcvad trimming
            windows = self._partial_mels(speech if speech.size else wav)
            partials.extend(windows)
            owners.extend([n] * len(windows))
        if not partials:
            return out
        mels = torch.from_numpy(np.stack(partials)).to(self.device)  # (W, 160, 40)
        embedded = torch.cat([self.encoder(chunk) for chunk in mels.split(PARTIALS_PER_BATCH)]).cpu().numpy()
        owners = np.asarray(owners)
        for n in np.unique(owners):
            out[n] = embedded[owners == n].mean(axis=0)  # resemblyzer: the mean of the partials, normalised
        return unit_rows(out)

    def _partial_mels(self, wav: np.ndarray) -> list[np.ndarray]:
        """One clip's 1.6 s log-mel windows, (160, 40) each, as `embed_utterance` cuts them."""
        wav_slices, mel_slices = self.encoder.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
        wav = np.pad(wav, (0, max(0, wav_slices[-1].stop - len(wav))))
        mel = self._resemblyzer.audio.wav_to_mel_spectrogram(wav)  # (frames, 40)
        return [mel[s] for s in mel_slices]

    def describe(self) -> dict:
        return {"backend": "resemblyzer", "model": "GE2E d-vector (resemblyzer pretrained.pt)",
                "source": self.weights, "version": package_version("resemblyzer"),
                "device": str(self.device), "sample_rate": ENCODER_RATE}


class WavLMSpeakerEncoder:
    """x-vectors of a transformers `WavLMForXVector` checkpoint (local folder or cached hub id).

    Clips are batched (padding + attention mask, longest first) when the convolutional feature
    encoder uses layer norm. With group norm, padding would change the normalisation statistics
    (and so the embedding) of the clips it is added to, so such models run one clip at a time.
    """

    def __init__(self, model: str | None = None, device: str = "auto", batch_size: int = 8):
        from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

        self.model_name = model or DEFAULT_WAVLM
        self.source = _locate(self.model_name)
        download = os.environ.get("TTSFRAME_ALLOW_DOWNLOAD") == "1"
        try:
            self.features = Wav2Vec2FeatureExtractor.from_pretrained(self.source, local_files_only=not download)
            self.model = WavLMForXVector.from_pretrained(self.source, local_files_only=not download)
        except OSError as e:
            raise UserError(_not_found(self.model_name, self.source, download, e)) from e
        if not os.path.isdir(self.source):  # a hub id: record the cached snapshot it came from
            self.source = _cached_snapshot(self.model_name) or self.model_name
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        layer_norm = self.model.config.feat_extract_norm == "layer"
        self.batch_size = batch_size if layer_norm else 1

    @torch.inference_mode()
    def embed(self, wavs: list[np.ndarray], sample_rate: int) -> np.ndarray:
        """Clips (T_i,) at `sample_rate` -> (N, D) float32, unit rows (NaN rows for silent clips)."""
        clips = clips_at_rate(wavs, sample_rate, ENCODER_RATE)
        out = np.full((len(clips), self.model.config.xvector_output_dim), np.nan, np.float32)
        order = sorted((i for i, c in enumerate(clips) if has_signal(c)), key=lambda i: -len(clips[i]))
        for start in range(0, len(order), self.batch_size):
            picked = order[start:start + self.batch_size]
            batch = self.features([clips[i] for i in picked], sampling_rate=ENCODER_RATE, padding=True,
                                  return_attention_mask=True, return_tensors="pt")
            result = self.model(batch["input_values"].to(self.device),  # (B, T)
                                attention_mask=batch["attention_mask"].to(self.device))  # (B, T)
            out[picked] = unit_rows(result.embeddings.float().cpu().numpy())  # (B, D)
        return out

    def describe(self) -> dict:
        return {"backend": "wavlm_sv", "model": self.model_name, "source": self.source,
                "transformers": package_version("transformers"), "device": str(self.device),
                "batch_size": self.batch_size, "sample_rate": ENCODER_RATE}


def _locate(model: str) -> str:
    """A folder that exists is used as it is; a path-like name that doesn't exist is an error."""
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        return os.path.abspath(path)
    if model.startswith(("/", "./", "../", "~")) or os.path.exists(path):
        raise UserError(f"speaker model folder not found: {model} (expected a save_pretrained folder)")
    return model


def _not_found(model: str, source: str, download: bool, error: Exception) -> str:
    if os.path.isdir(source) or download:
        return f"cannot load a WavLM x-vector model from {source}: {' '.join(str(error).split())[:300]}"
    return (f"speaker model `{model}` is not in the Hugging Face cache and downloads are off: run "
            f"`hf download {model}` (`huggingface-cli download {model}` with older huggingface_hub) on a "
            f"machine with network and copy its ~/.cache/huggingface here, set eval.speaker.model to a local "
            f"save_pretrained folder, or set TTSFRAME_ALLOW_DOWNLOAD=1")


def _cached_snapshot(model: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model, "config.json")
    return os.path.dirname(config) if isinstance(config, str) else None


# backend name -> encoder class, built as Class(model=..., device=...)
SPEAKER_ENCODERS: dict[str, type] = {
    "resemblyzer": ResemblyzerEncoder,
    "wavlm_sv": WavLMSpeakerEncoder,
    "campplus": CamPlusPlusEncoder,
}


def build_speaker_encoder(backend: str, model: str | None = None, device: str = "auto"):
    """The encoder registered as `backend` (see SPEAKER_ENCODERS); `model` None picks its default."""
    if backend not in SPEAKER_ENCODERS:
        raise ConfigError(f"unknown speaker backend `{backend}`; valid backends: {', '.join(sorted(SPEAKER_ENCODERS))}")
    return SPEAKER_ENCODERS[backend](model=model, device=device)
