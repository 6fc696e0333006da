"""The fitted state of a codec fitted by ttsframe: one safetensors file, settings as JSON metadata.

Shared by the spectral and semantic codecs: written atomically, read without pickle, and refused
with a clear error when it was fitted with other settings than the config's.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ttsframe.errors import ConfigError, UserError


def write_state(path: str | Path, fmt: str, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """`tensors` (moved to the CPU) and {"format": fmt, **meta} as the file's `ttsframe` metadata."""
    from safetensors.torch import save_file

    from ttsframe.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={"ttsframe": json.dumps({"format": fmt, **meta})})


def read_state(path: str | Path, fmt: str, what: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a file `write_state` wrote with format `fmt`; `what` names it in errors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} state {path} not found")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = json.loads((f.metadata() or {}).get("ttsframe", "{}"))
        if meta.get("format") != fmt:
            raise UserError(f"{path}: not a ttsframe {what} state (format {meta.get('format')!r})")
        return meta, {k: f.get_tensor(k) for k in f.keys()}


def check_settings(path: str | Path, meta: dict, expected: dict) -> None:
    """ConfigError naming the first setting the file was fitted with that differs from `expected`."""
    for key, value in expected.items():
        if meta[key] != value:
            raise ConfigError(f"{path} was fitted with {key}={meta[key]}, the config says {value}; "
                              "delete it to refit, or change the config")
