"""Whisper k-means tokens: a Whisper encoder's output quantised by k-means, fitted on the train split.

    encoder   model="bundled": the evaluation's faster-whisper tiny.en (CTranslate2, hash-checked,
              384 dims), run in float32 on CPU and CUDA alike; or a transformers Whisper, a local
              folder or a hub id already in the Hugging Face cache (never downloaded)
    features  Whisper's log-mel (faster-whisper's FeatureExtractor, 80 or 128 bands), each clip cut
              into 30 s windows zero-padded to 30 s as Whisper was trained; the encoder gives 50
              frames a second and only the real audio's n // 320 frames are kept
    fit       a seeded subset of train up to fit_max_seconds, k-means++ then Lloyd (codecs/kmeans.py)
    files     out_dir/tokenizer.safetensors (centroids (K, D)), then out_dir/tokenizer.json

Each clip is encoded in windows of its own, so a clip's tokens do not depend on the batch. Such
tokens lose much of what Whisper itself reads back (tiny.en decoding its own quantised encoder output
on 40 built-in test clips: WER 0.75 at K=512 against 0.35 unquantised): a baseline for the supervised
tokenizers (s3_asr, s3_onnx).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ttsframe.codecs.base import full_lengths, resolve_device
from ttsframe.codecs.kmeans import kmeans, nearest
from ttsframe.data.audio import load_audio
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.asr import BUNDLED, _faster_whisper_folder, file_sha256
from ttsframe.tokenizers.config import WhisperKmeansTokenizerConfig as WhisperKmeansConfig  # noqa: F401 (its schema)
from ttsframe.utils.atomic import atomic_path, write_json

SAMPLE_RATE = 16_000
FRAME_RATE = 50.0
SAMPLES_PER_FRAME = 320  # 16 kHz / 50 Hz: mel hop 160, then the encoder's stride-2 conv
WINDOW = 30 * SAMPLE_RATE  # samples per encoder window (3000 mel frames -> 1500 encoder frames)
WINDOWS_PER_BATCH = 8
WEIGHTS, META = "tokenizer.safetensors", "tokenizer.json"


class BundledEncoder:
    """The evaluation's faster-whisper tiny.en through CTranslate2 (its files checked first)."""

    def __init__(self, device: torch.device):
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        folder, self.provenance = _faster_whisper_folder(BUNDLED)
        if device.type == "cuda" and ctranslate2.get_cuda_device_count() == 0:
            raise UserError(f"whisper_kmeans: device {device} asked for, but CTranslate2 sees no CUDA device")
        self.model = ctranslate2.models.Whisper(str(folder), device=device.type, device_index=device.index or 0,
                                                compute_type="float32", intra_threads=torch.get_num_threads())
        self.features = FeatureExtractor(feature_size=80)

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """feats (B, 80, 3000) -> hidden (B, 1500, 384) float32."""
        from ctranslate2 import StorageView

        return np.asarray(self.model.encode(StorageView.from_array(np.ascontiguousarray(feats)), to_cpu=True))


class TransformersEncoder:
    """`WhisperModel.encoder` of a local folder or of a hub id in the Hugging Face cache, float32."""

    def __init__(self, name: str, device: torch.device):
        from faster_whisper.feature_extractor import FeatureExtractor
        from transformers import WhisperModel

        local = Path(name).expanduser()
        try:
            net = WhisperModel.from_pretrained(str(local) if local.is_dir() else name, local_files_only=True)
        except OSError as e:
            raise UserError(f"whisper_kmeans model {name!r} is neither 'bundled', a local transformers Whisper "
                            f"folder nor a hub id in the Hugging Face cache; nothing is downloaded: run "
                            f"`huggingface-cli download {name}` where there is network, or pass a folder "
                            f"({e.__class__.__name__})") from None
        self.encoder = net.get_encoder().to(device).eval()
        self.device = device
        self.provenance = {"path": str(local.resolve())} if local.is_dir() else {"hub_id": name}
        self.features = FeatureExtractor(feature_size=net.config.num_mel_bins)

    @torch.inference_mode()
    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """feats (B, n_mels, 3000) -> hidden (B, 1500, d_model) float32."""
        return self.encoder(torch.from_numpy(feats).to(self.device)).last_hidden_state.float().cpu().numpy()


def build_encoder(model: str, device: torch.device):
    return BundledEncoder(device) if _canonical(model) == "bundled" else TransformersEncoder(model, device)


def encode_frames(encoder, wavs: list[np.ndarray]) -> list[torch.Tensor]:
    """Clips (T_i,) at 16 kHz -> encoder frames (T_i // 320, D) float32 on CPU; (0, 0) for a clip
    under 20 ms. Windows of 30 s from all clips go through the encoder WINDOWS_PER_BATCH at a time."""
    windows = [(i, wav[s: s + WINDOW]) for i, wav in enumerate(wavs) for s in range(0, len(wav), WINDOW)]
    windows = [(i, piece) for i, piece in windows if len(piece) >= SAMPLES_PER_FRAME]
    parts: list[list[torch.Tensor]] = [[] for _ in wavs]
    for start in range(0, len(windows), WINDOWS_PER_BATCH):
        batch = windows[start: start + WINDOWS_PER_BATCH]
        feats = np.stack([encoder.features(np.pad(piece, (0, WINDOW - len(piece))), padding=0)
                          for _, piece in batch]).astype(np.float32)  # (b, n_mels, 3000)
        hidden = encoder(feats)  # (b, 1500, D)
        for (i, piece), frames in zip(batch, hidden):
            parts[i].append(torch.from_numpy(frames[: len(piece) // SAMPLES_PER_FRAME].copy()))
    return [torch.cat(p) if p else torch.zeros(0, 0) for p in parts]


class WhisperKmeansTokenizer:
    """wav (B, T_wav) at 16 kHz -> ids (B, T_wav // 320) at 50 Hz: each frame's nearest centroid."""

    sample_rate = SAMPLE_RATE
    frame_rate = FRAME_RATE

    def __init__(self, encoder, centroids: torch.Tensor, folder: Path, sha256: str, model: str):
        self.encoder = encoder
        self.centroids = centroids  # (K, D)
        self.vocab_size = centroids.shape[0]
        self.folder, self.sha256, self.model = folder, sha256, model

    def frames_for(self, num_samples: int) -> int:
        return num_samples // SAMPLES_PER_FRAME

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav), lengths (B,) samples -> ids (B, frames_for(T_wav)) long; row i valid for
        its first frames_for(lengths[i]) ids, 0 after them."""
        clips = [wav[i, :n].float().cpu().numpy() for i, n in enumerate(full_lengths(wav, lengths).tolist())]
        ids = torch.zeros(len(clips), self.frames_for(wav.shape[-1]), dtype=torch.long)
        for i, frames in enumerate(encode_frames(self.encoder, clips)):
            if len(frames):
                ids[i, : len(frames)] = nearest(frames.to(self.centroids.device), self.centroids)[0].cpu()
        return ids.to(wav.device)

    def describe(self) -> dict:
        return {"name": "whisper_kmeans", "frame_rate": self.frame_rate, "vocab_size": self.vocab_size,
                "folder": str(self.folder), "sha256": self.sha256, "model": self.model}


def fit_whisper_kmeans(cfg, train_utterances, out_dir: str | Path) -> dict:
    """Encodes a seeded subset of `train_utterances` (manifest Utterances), fits K centroids and
    writes out_dir/tokenizer.safetensors, then out_dir/tokenizer.json (both atomically).

    Returns a summary: the audio used, the mean squared distance to the nearest centroid, how
    many of the K codes the fit frames use, the sha256 of the centroids file."""
    started = time.perf_counter()
    model, k, seed = _get(cfg, "model", "bundled"), int(_get(cfg, "n_clusters", 512)), int(_get(cfg, "seed", 0))
    device = resolve_device(_get(cfg, "device", "auto"))
    chosen = fit_subset(list(train_utterances), float(_get(cfg, "fit_max_seconds", 1800.0)), seed)
    encoder = build_encoder(model, device)
    wavs = [load_audio(u.audio, SAMPLE_RATE, u.start, u.end)[0] for u in chosen]
    x = torch.cat([f for f in encode_frames(encoder, wavs) if len(f)] or [torch.zeros(0, 0)]).to(device)  # (N, D)
    if x.shape[0] < k:
        raise UserError(f"whisper_kmeans: the fit got {x.shape[0]} frames from {len(chosen)} utterances, fewer "
                        f"than n_clusters={k}; give it more audio (fit_max_seconds) or fewer clusters")
    gen = torch.Generator(device=device).manual_seed(seed)
    centroids = kmeans(x, k, int(_get(cfg, "kmeans_iters", 20)), gen)  # (K, D)
    index, dist = nearest(x, centroids)
    out_dir = Path(out_dir).expanduser().resolve()
    sha256 = _save_centroids(out_dir / WEIGHTS, centroids)
    summary = {"name": "whisper_kmeans", "model": _canonical(model), "n_clusters": k, "dim": x.shape[1],
               "utterances": len(chosen), "seconds": round(sum(len(w) for w in wavs) / SAMPLE_RATE, 2),
               "frames": x.shape[0], "mean_sq_distance": round(float(dist.mean()), 5),
               "codes_used": int(index.unique().numel()), "sha256": sha256, "folder": str(out_dir),
               "fit_seconds": round(time.perf_counter() - started, 2)}
    write_json(out_dir / META, {**summary, "frame_rate": FRAME_RATE, "sample_rate": SAMPLE_RATE, "seed": seed,
                                "kmeans_iters": int(_get(cfg, "kmeans_iters", 20)), "encoder": encoder.provenance})
    return summary


def load_whisper_kmeans(folder: str | Path, cfg_or_description) -> WhisperKmeansTokenizer:
    """The tokenizer that `fit_whisper_kmeans` wrote to `folder`, checked against a config (model,
    n_clusters, device) or a `describe()` dict (model, vocab_size, sha256)."""
    folder = Path(folder).expanduser().resolve()
    missing = [name for name in (WEIGHTS, META) if not (folder / name).is_file()]
    if missing:
        raise UserError(f"whisper_kmeans tokenizer: {folder} has no {' or '.join(missing)}; run the "
                        f"train_tokenizer stage first, which fits the tokenizer and writes them there")
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    sha256 = file_sha256(folder / WEIGHTS)
    if sha256 != meta["sha256"]:
        raise UserError(f"{folder / WEIGHTS} has sha256 {sha256}, but {META} beside it says {meta['sha256']}: "
                        f"the file changed after the fit; run the train_tokenizer stage again")
    _check_matches(meta, cfg_or_description, folder)
    from safetensors.torch import load_file

    device = resolve_device(_get(cfg_or_description, "device", "auto"))
    centroids = load_file(str(folder / WEIGHTS))["centroids"].to(device)
    return WhisperKmeansTokenizer(build_encoder(meta["model"], device), centroids, folder, sha256, meta["model"])


def fit_subset(utterances: list, max_seconds: float, seed: int) -> list:
    """The longest prefix of the seeded shuffle of `utterances` within `max_seconds` (one at least)."""
    order = list(range(len(utterances)))
    random.Random(seed).shuffle(order)
    chosen, seconds = [], 0.0
    for i in order:
        if chosen and seconds + utterances[i].duration > max_seconds:
            break
        chosen.append(utterances[i])
        seconds += utterances[i].duration
    if not chosen:
        raise UserError("whisper_kmeans: no train utterances to fit on")
    return chosen


def _save_centroids(path: Path, centroids: torch.Tensor) -> str:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({"centroids": centroids.detach().float().cpu().contiguous()}, str(tmp))
    return file_sha256(path)


def _check_matches(meta: dict, cfg_or_description, folder: Path) -> None:
    """A config or description that names another model, size or file than the fit's fails."""
    model = _get(cfg_or_description, "model")
    wanted = {"model": None if model is None else _canonical(model),
              "n_clusters": _get(cfg_or_description, "n_clusters", _get(cfg_or_description, "vocab_size")),
              "sha256": _get(cfg_or_description, "sha256")}
    for key, value in wanted.items():
        if value is not None and value != meta[key]:
            raise ConfigError(f"{folder} was fitted with {key}={meta[key]!r}, but {value!r} is asked for; "
                              f"run the train_tokenizer stage again or change the tokenizer config")


def _canonical(model: str) -> str:
    """"bundled" for the bundled model, a local folder as its absolute path, a hub id as it is."""
    if model in ("bundled", BUNDLED):
        return "bundled"
    local = Path(model).expanduser()
    return str(local.resolve()) if local.is_dir() else str(model)


def _get(cfg, key: str, default=None):
    """A field of a config dataclass, a DictConfig or a plain dict (a `describe()` result)."""
    value = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    return default if value is None else value
