"""Released weights as the start of the cosyvoice train stages (`model.init_from`).

`pretrained_part(source, "lm" | "flow")` reads one part of

- a CosyVoice 2 download (the CosyVoice2-0.5B folder, or its hub id in the local Hugging Face cache):
  `llm.pt` / `flow.pt` through the converters, their sizes from `cosyvoice2.yaml`;
- a cosyvoice release folder (`import-cosyvoice2`'s, or a release stage's): `lm.safetensors` /
  `flow.safetensors` and `model_config.json`.

`check_shards` says what in the tokenize stage's output does not fit the part (speech tokens, text
vocabulary, speaker embedding, mel features), each with the setting that would make it fit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ttsframe.codecs.mel import MelConfig

PARTS = {"lm": ("llm.pt", "lm.safetensors"), "flow": ("flow.pt", "flow.safetensors")}


def pretrained_part(source: str | Path, part: str) -> tuple[dict, dict[str, torch.Tensor], MelConfig]:
    """(config fields, state dict, the mel features it was trained on) of the LM or the flow in `source`.

    Raises:
        UserError: `source` is neither a CosyVoice 2 folder nor a cosyvoice release, or lacks the part.
    """
    from ttsframe.errors import UserError
    from ttsframe.models.cosyvoice.import_cosyvoice2 import source_folder

    released, ours = PARTS[part]
    root = source_folder(source)
    if (root / "model_config.json").is_file():  # a release folder
        from safetensors.torch import load_file

        from ttsframe.inference.checkpoint import need_file

        models = json.loads((root / "model_config.json").read_text(encoding="utf-8"))
        if models.get("family") != "cosyvoice":
            raise UserError(f"{root}: a release of family {models.get('family')!r}, not cosyvoice")
        mel = MelConfig.from_any(json.loads(need_file(root, "mel.json").read_text(encoding="utf-8")))
        return dict(models[part]), load_file(str(need_file(root, ours))), mel
    if not (root / released).is_file():
        raise UserError(f"{root}: neither a CosyVoice 2 folder ({released} is missing) nor a release folder "
                        "(model_config.json is missing)")
    from ttsframe.models.cosyvoice.cosyvoice2_config import released_configs

    configs = released_configs(root)
    if part == "lm":
        from ttsframe.models.cosyvoice.lm_release import load_llm_checkpoint

        model, config = load_llm_checkpoint(root / released, configs.lm), configs.lm
    else:
        from ttsframe.models.cosyvoice.flow_cosyvoice2 import load_flow_checkpoint

        model, config = load_flow_checkpoint(root / released, configs.flow), configs.flow
    return dataclasses.asdict(config), model.state_dict(), configs.mel


def check_shards(part: str, config: dict, mel: MelConfig, index: dict, vocab_size: int) -> None:
    """Raises ValueError naming what of the shards (`index`, text `vocab_size`) the part cannot read."""
    wrong = []
    if int(index.get("speech_vocab_size") or 0) != config["n_speech"]:
        wrong.append(f"its {config['n_speech']} speech tokens are not the shards' {index.get('speech_vocab_size')} "
                     "(tokenize with its speech tokenizer: tokenizer=s3_onnx tokenizer.path=<speech_tokenizer_v2.onnx>)")
    if part == "lm" and not vocab_size <= config["n_text"]:
        wrong.append(f"the shards' {vocab_size} text ids do not fit its {config['n_text']} (text=bpe_cosyvoice2 "
                     "text.tokenizer=<its CosyVoice-BlankEN>)")
    if config.get("spk_dim") and int(index.get("spk_dim") or 0) != config["spk_dim"]:
        wrong.append(f"its speaker embedding has {config['spk_dim']} dims, the shards' {index.get('spk_dim')} "
                     "(the tokenize stage's speaker: campplus, speaker_model: <campplus.onnx>)")
    if part == "flow":
        shard_mel = (index.get("codec") or {}).get("mel")
        if shard_mel is None or MelConfig.from_any(shard_mel) != mel:
            wrong.append(f"the shards' mel features {shard_mel} are not its {mel.to_dict()} (codec=mel_cosyvoice2)")
        if float(index.get("speech_frame_rate") or 0) != float(config["token_rate"]):
            wrong.append(f"its {config['token_rate']} tokens/s are not the shards' {index.get('speech_frame_rate')}")
    if wrong:
        raise ValueError(f"the pretrained {part} does not fit the shards: " + "; ".join(wrong))
