"""Reading published (non-ttsframe) weight files into our modules: fold weight norm, rename, check.

A converter for a published checkpoint (CosyVoice 2's `hift.pt`, `flow.pt`, `llm.pt`) is a
renaming function `theirs -> ours | None` (`renamer` builds one from regex rules) plus
`map_state`, which applies it and refuses, in one UserError, every key that does not map: their
keys that name nothing of ours (unexpected), our parameters that nothing fills (missing), and
tensors of the wrong shape.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from ttsframe.errors import UserError

_WEIGHT_NORM = ((".parametrizations.weight.original0", ".parametrizations.weight.original1"),  # torch >= 2.1
                (".weight_g", ".weight_v"))  # torch.nn.utils.weight_norm


Rule = tuple[str, Callable[[re.Match], "str | None"]]


def renamer(rules: Sequence[Rule]) -> Callable[[str], str | None]:
    """theirs -> ours by the first rule whose regex matches the whole key; None when none does."""
    compiled = [(re.compile(pattern), ours) for pattern, ours in rules]

    def rename(theirs: str) -> str | None:
        for pattern, ours in compiled:
            match = pattern.fullmatch(theirs)
            if match:
                return ours(match)
        return None

    return rename


def read_torch_state(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a `torch.save`d state dict (tensors and plain containers only: nothing runs).

    Args:
        path: the file (`hift.pt`, ...).
        what: what it should be, for the error message ("CosyVoice 2 hift.pt").
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected the {what})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise UserError(f"{path}: not a readable {what} ({str(e).strip()[:200]})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a state dict of tensors (the {what})")
    return dict(state)


def fold_weight_norm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every weight-normed pair (g, v) -> `<module>.weight` = g * v / |v|, |v| over all axes but g's.

    Both namings are read: `.parametrizations.weight.original0/1` and `.weight_g/_v`.
    """
    out = dict(state)
    for g_suffix, v_suffix in _WEIGHT_NORM:
        for key in [k for k in out if k.endswith(g_suffix)]:
            module = key[: -len(g_suffix)]
            g, v = out.pop(key), out.pop(module + v_suffix, None)
            if v is None:
                raise UserError(f"weight norm: `{key}` without its `{module + v_suffix}`")
            keep = [d for d in range(v.dim()) if g.shape[d] != 1] or [0]  # the axis the norm is per
            norm = v.double().pow(2).sum(dim=[d for d in range(v.dim()) if d not in keep], keepdim=True).sqrt()
            out[module + ".weight"] = (v.double() * (g.double() / norm)).to(v.dtype)
    return out


def map_state(state: Mapping[str, torch.Tensor], rename: Callable[[str], str | None],
              target: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """`state` under our names, checked against `target` (our module's state dict).

    Args:
        state: their tensors (weight norm already folded).
        rename: their key -> our key; None where it names nothing of ours (an error); "" where it
            is known and has no use here (skipped).
        target: our state dict (names and shapes that must all be filled).
        what: the file, for the error message.

    Raises:
        UserError: naming every unexpected key, missing key and shape mismatch (up to 20 of each).
    """
    mapped, unexpected, wrong, seen = {}, [], [], set()
    for key, value in state.items():
        ours = rename(key)
        if ours == "":  # known, and of no use here
            continue
        if ours is None or ours not in target or ours in seen:
            unexpected.append(key if ours is None else f"{key} (-> {ours}{', twice' if ours in seen else ''})")
            continue
        seen.add(ours)
        if tuple(value.shape) != tuple(target[ours].shape):
            wrong.append(f"{key} {tuple(value.shape)} -> {ours} {tuple(target[ours].shape)}")
        else:
            mapped[ours] = value
    missing = sorted(set(target) - seen)
    problems = [f"{name} ({len(keys)}): {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}"
                for name, keys in (("unexpected keys", unexpected), ("missing keys", missing),
                                   ("shape mismatches", wrong)) if keys]
    if problems:
        raise UserError(f"{what} does not map onto this model: " + "; ".join(problems)
                        + " (is it the file of this part and size?)")
    return mapped
