"""`TOKENIZERS`: speech tokenizers by config name, with their schemas and builders (lazy imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ttsframe.codecs.base import resolve_device
from ttsframe.errors import ConfigError
from ttsframe.tokenizers.config import S3AsrTokenizerConfig, S3OnnxTokenizerConfig, WhisperKmeansTokenizerConfig

TRAIN_STAGE_DIR = "train_tokenizer"  # where the train_tokenizer stage leaves a tokenizer it trains


def _s3_asr(cfg: Any, exp_dir: Path):
    from ttsframe.tokenizers.s3_asr.io import load_tokenizer

    return load_tokenizer(Path(cfg.checkpoint) if cfg.checkpoint else exp_dir / TRAIN_STAGE_DIR,
                          resolve_device(cfg.device))


def _whisper_kmeans(cfg: Any, exp_dir: Path):
    from ttsframe.tokenizers.whisper_kmeans import load_whisper_kmeans

    return load_whisper_kmeans(Path(cfg.checkpoint) if cfg.checkpoint else exp_dir / TRAIN_STAGE_DIR, cfg)


def _s3_onnx(cfg: Any, exp_dir: Path):
    from ttsframe.tokenizers.s3_onnx import S3OnnxTokenizer

    return S3OnnxTokenizer(cfg.path, cfg.frame_rate, cfg.vocab_size, cfg.device)


# name -> (config schema, builder(cfg, exp_dir) -> SpeechTokenizer, trained by the train_tokenizer stage)
TOKENIZERS: dict[str, tuple[type, Callable[[Any, Path], Any], bool]] = {
    "s3_asr": (S3AsrTokenizerConfig, _s3_asr, True),
    "whisper_kmeans": (WhisperKmeansTokenizerConfig, _whisper_kmeans, True),
    "s3_onnx": (S3OnnxTokenizerConfig, _s3_onnx, False),
}


def _entry(name: str) -> tuple:
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown speech tokenizer `{name}`; valid: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]


def tokenizer_schema(name: str) -> type:
    return _entry(name)[0]


def is_trained_here(name: str) -> bool:
    """True for tokenizers the train_tokenizer stage trains or fits on the recipe's corpus."""
    return _entry(name)[2]


def build_speech_tokenizer(cfg: Any, exp_dir: str | Path):
    """The tokenizer of a `tokenizer` config (dataclass or DictConfig) for the run in `exp_dir`."""
    return _entry(cfg.name)[1](cfg, Path(exp_dir))


def load_described(description: dict, device: str | Any = "cpu"):
    """The tokenizer a `describe()` names (as the shards' index and releases keep it)."""
    name = description.get("name")
    if name == "s3_asr":
        from ttsframe.tokenizers.s3_asr.io import load_tokenizer

        tokenizer = load_tokenizer(description["folder"], device)
        if description.get("sha256") and tokenizer.describe()["sha256"] != description["sha256"]:
            raise ConfigError(f"{description['folder']}: the s3_asr tokenizer there is not the one the shards were "
                              "made with (its weights changed); re-run the tokenize stage")
        return tokenizer
    if name == "whisper_kmeans":
        from ttsframe.tokenizers.whisper_kmeans import load_whisper_kmeans

        return load_whisper_kmeans(Path(description["folder"]), description)
    if name == "s3_onnx":
        from ttsframe.tokenizers.s3_onnx import S3OnnxTokenizer

        return S3OnnxTokenizer(description["path"], description["frame_rate"], description["vocab_size"], str(device))
    raise ConfigError(f"unknown speech tokenizer `{name}` in {description}; valid: {', '.join(TOKENIZERS)}")
