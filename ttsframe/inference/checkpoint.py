"""What synthesizers read and write: training checkpoints (without Lightning and without pickle
code), vocabularies, codec configs, safetensors weights and the files of a release folder.

The train stage writes Lightning checkpoints whose `state_dict` keys are `model.<parameter>` and
whose `hyper_parameters` hold `model_config` (the model's config fields), `family` and `task`
(see each family's `task.py`). `torch.load(weights_only=True)` reads them: it restores
tensors and plain containers only, so a checkpoint file cannot run code when it is loaded.
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ttsframe.codecs import codec_schema, to_dataclass
from ttsframe.errors import UserError

MODEL_PREFIX = "model."


@dataclass
class CheckpointModel:
    """One trained model as a checkpoint holds it.

    Attributes:
        config: the model's config fields (`hyper_parameters.model_config`).
        state_dict: its parameters, without the `model.` prefix, on the CPU.
        family: the model family ("valle").
        task: the training task ("valle_ar" | "valle_nar").
        global_step: optimizer steps taken when the checkpoint was written (None if unknown).
    """

    config: dict
    state_dict: dict[str, torch.Tensor]
    family: str
    task: str
    global_step: int | None = None


def read_checkpoint(path: str | Path, family: str, task: str) -> CheckpointModel:
    """Loads the model part of a training checkpoint, checking it is the expected one.

    Args:
        path: a `.ckpt` file written by the train stage.
        family: the family it must hold, e.g. "valle".
        task: the task it must come from, e.g. "valle_ar".

    Raises:
        UserError: missing or unreadable file, or a checkpoint of another family or task.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found: run the train stage first")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable training checkpoint ({first})") from None
    hparams = checkpoint.get("hyper_parameters") or {}
    found = (hparams.get("family"), hparams.get("task"))
    if found != (family, task):
        raise UserError(f"{path} holds family={found[0]!r} task={found[1]!r}; expected family={family!r} "
                        f"task={task!r} (is it the checkpoint of the right train stage?)")
    if "model_config" not in hparams or "state_dict" not in checkpoint:
        raise UserError(f"{path}: a checkpoint without `model_config` or `state_dict`")
    weights = {k[len(MODEL_PREFIX):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(MODEL_PREFIX)}
    if not weights:
        raise UserError(f"{path}: no `{MODEL_PREFIX}*` weights in its state_dict")
    step = checkpoint.get("global_step")
    return CheckpointModel(dict(hparams["model_config"]), weights, family, task,
                           int(step) if step is not None else None)


def load_vocabulary(shard_dir: Path):
    """The tokenize stage's `vocab.json`; UserError saying to run that stage when it is missing."""
    from ttsframe.text import Vocabulary

    path = Path(shard_dir) / "vocab.json"
    if not path.is_file():
        raise UserError(f"{path} not found: run the tokenize stage first")
    return Vocabulary.load(path)


def save_weights(path: Path, module: torch.nn.Module, family: str, task: str) -> None:
    """A module's state dict as safetensors (atomically), tagged with its family and task."""
    from safetensors.torch import save_file

    from ttsframe.utils.atomic import atomic_path

    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"family": family, "task": task})


def codec_fields(codec_cfg: Any, device: torch.device | str | None = None) -> dict:
    """The codec config as plain fields (validated by its schema), `device` set when given."""
    name = codec_cfg.get("name") if hasattr(codec_cfg, "get") else getattr(codec_cfg, "name", None)
    if not isinstance(name, str):
        raise UserError("codec config needs `name:`")
    fields = dataclasses.asdict(to_dataclass(codec_schema(name), codec_cfg, "codec"))
    if device is not None:
        fields["device"] = str(device)
    return fields


def need_file(root: Path, name: str) -> Path:
    """root / name; UserError when the release lacks it."""
    path = root / name
    if not path.is_file():
        raise UserError(f"{root} is not a complete release: {name} is missing")
    return path
