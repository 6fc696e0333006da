"""Schemas of the `tokenizer` config group, one per speech tokenizer (`name:` picks it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class S3AsrTokenizerConfig:
    """The supervised tokenizer the framework trains (stage `train_tokenizer`)."""

    name: str = "s3_asr"
    preset: str = "s3_asr_tiny"  # s3_asr_tiny | s3_asr_base
    subsample: int = 4  # 4: 25 Hz tokens, 2: 50 Hz
    checkpoint: str | None = None  # a trained tokenizer folder; null: <exp_dir>/train_tokenizer
    device: str = "auto"
    # training (stage train_tokenizer)
    steps: int = 800
    lr: float = 2.0e-3
    lr_warmup_steps: int = 100
    quantizer_warmup_steps: int = 300  # CTC without the FSQ rounding first (it collapses from step 0)
    batch_frames: int = 6000  # padded 100 Hz frames per batch
    log_every: int = 100
    max_minutes: float | None = None  # stop at the first log step past this wall time
    spec_augment: bool = True  # SpecAugment frequency and time masks on the training batches
    vtlp: float = 0.0  # vocal tract length perturbation: frequency warps up to this factor (0.1: +-10%)
    seed: int = 0


@dataclass
class WhisperKmeansTokenizerConfig:
    """k-means over a Whisper encoder's output, fitted on train by the train_tokenizer stage."""

    name: str = "whisper_kmeans"
    model: str = "bundled"  # bundled: the evaluation's CTranslate2 tiny.en; or a transformers Whisper folder / hub id
    n_clusters: int = 512  # K, the vocabulary size
    fit_max_seconds: float = 1800.0  # train audio the k-means is fitted on (a seeded subset)
    kmeans_iters: int = 20  # Lloyd iterations
    checkpoint: str | None = None  # a fitted tokenizer folder; null: <exp_dir>/train_tokenizer
    device: str = "auto"
    seed: int = 0


@dataclass
class S3OnnxTokenizerConfig:
    """CosyVoice's released tokenizers (speech_tokenizer_v1.onnx 50 Hz, _v2.onnx 25 Hz)."""

    name: str = "s3_onnx"
    path: str | None = None  # the .onnx file
    frame_rate: float = 25.0  # v1: 50, v2: 25
    vocab_size: int = 6561  # v1: 4096, v2: 6561
    device: str = "auto"
