"""A trained S3-ASR tokenizer on disk: `tokenizer.safetensors` (weights) + `tokenizer.json`.

    tokenizer.json  {"name": "s3_asr", "config": S3AsrConfig fields, "features": AsrFeatureConfig
                     fields, "phones": the CTC phone table, "history": the training log rows,
                     "sha256": of tokenizer.safetensors}

Both are written atomically, the weights first, so a folder with a tokenizer.json is complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ttsframe.errors import UserError
from ttsframe.tokenizers.s3_asr.features import AsrFeatureConfig
from ttsframe.tokenizers.s3_asr.model import S3AsrConfig, S3AsrModel
from ttsframe.tokenizers.s3_asr.tokenizer import S3AsrTokenizer
from ttsframe.utils.atomic import atomic_path, write_json

WEIGHTS, META = "tokenizer.safetensors", "tokenizer.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_tokenizer(folder: Path, model: S3AsrModel, phones: tuple[str, ...], features: AsrFeatureConfig,
                   history: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(folder / META, {"name": "s3_asr", "config": dataclasses.asdict(model.config),
                               "features": dataclasses.asdict(features), "phones": list(phones),
                               "history": history, "sha256": file_sha256(folder / WEIGHTS)})


def load_tokenizer(folder: str | Path, device: str | torch.device = "cpu") -> S3AsrTokenizer:
    """The tokenizer a train_tokenizer stage (or `save_tokenizer`) left in `folder`."""
    folder = Path(folder)
    if not (folder / META).is_file() or not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder}: no trained s3_asr tokenizer ({META} + {WEIGHTS}); run the train_tokenizer "
                        "stage first (make recipe=cosyvoice stage=1 stop_stage=1) or set tokenizer.checkpoint")
    meta = json.loads((folder / META).read_text())
    tokenizer = tokenizer_from_state(meta, load_file(str(folder / WEIGHTS)), device)
    tokenizer.folder = str(folder.resolve())
    return tokenizer


def tokenizer_from_state(meta: dict, state_dict: dict[str, torch.Tensor],
                         device: str | torch.device = "cpu") -> S3AsrTokenizer:
    """The tokenizer of a `tokenizer.json` dict and its weights (e.g. embedded in a codec's file)."""
    model = S3AsrModel(S3AsrConfig(**meta["config"]))
    model.load_state_dict(state_dict)
    tokenizer = S3AsrTokenizer(model.to(device), AsrFeatureConfig(**meta["features"]))
    tokenizer.checksum = meta["sha256"]
    return tokenizer


def tokenizer_state(tokenizer: S3AsrTokenizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """(`tokenizer.json` dict, weights on the CPU) of a loaded tokenizer: `tokenizer_from_state`'s inverse."""
    model = tokenizer.model
    meta = {"name": "s3_asr", "config": dataclasses.asdict(model.config),
            "features": dataclasses.asdict(tokenizer.features.cfg), "sha256": tokenizer.checksum}
    return meta, {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
