"""The sizes of CosyVoice 2's released parts, read from its folder without running anything.

CosyVoice2-0.5B (https://huggingface.co/FunAudioLLM/CosyVoice2-0.5B) describes its models in
`cosyvoice2.yaml`, a HyperPyYAML file: `!new:module.Class` mappings are constructor arguments,
`!name:` / `!apply:` name functions, `!ref <key>` refers to another top-level key (also
`!ref <a> * <b>`). `read_hyperpyyaml` reads it as plain data (tags dropped, references resolved,
nothing imported or called). The LM's Qwen2 sizes come from `CosyVoice-BlankEN/config.json`.

`released_configs(folder)` gives our configs of each part: the LM (`LMConfig`, release layout),
the flow (`CosyVoice2FlowConfig`), HiFT (`HiFTConfig`), the mel features (`MelConfig`) and the
sampling options CosyVoice 2 decodes with (`CosyVoiceSamplingOptions`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import UserError
from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2FlowConfig
from ttsframe.models.cosyvoice.lm import LMConfig
from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions
from ttsframe.vocoders.hift import HiFTConfig, reference_config

CONFIG_FILE = "cosyvoice2.yaml"
QWEN_DIR = "CosyVoice-BlankEN"  # Qwen's tokenizer and config (its weights are in llm.pt)
UP_LAYERS = 4  # CosyVoice's UpsampleConformerEncoder: 4 blocks after the upsampling, fixed in its code
# CosyVoice2's LM inference (Qwen2LM.inference defaults): speech tokens per text token
MIN_TOKEN_TEXT_RATIO, MAX_TOKEN_TEXT_RATIO = 2.0, 20.0
FLOW_STEPS = 10  # CausalMaskedDiffWithXvec.inference: n_timesteps=10


class _Ref(str):
    """The text of a `!ref` tag, resolved after loading."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads HyperPyYAML's tags as data: `!new:X` / `!name:X` / `!apply:X` -> the node's
    value (a mapping gets `__class__`: X), `!ref` -> a `_Ref`."""


def _tagged(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {"__class__": suffix, **loader.construct_mapping(node, deep=True)}
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node) or None


_Loader.add_multi_constructor("!new:", _tagged)
_Loader.add_multi_constructor("!name:", _tagged)
_Loader.add_multi_constructor("!apply:", _tagged)
_Loader.add_constructor("!ref", lambda loader, node: _Ref(loader.construct_scalar(node)))
_REF = re.compile(r"<([\w.]+)>")


def read_hyperpyyaml(path: str | Path) -> dict:
    """A HyperPyYAML file as plain data, `!ref`s resolved (a product of references is computed)."""
    path = Path(path)
    try:
        tree = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not a readable HyperPyYAML file ({str(e).splitlines()[0]})") from None

    def resolve(value: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(value, _Ref):
            names = _REF.findall(value)
            if any(name in seen or name.split(".")[0] not in tree for name in names):
                raise UserError(f"{path}: cannot resolve `!ref {value}`")
            values = [resolve(_lookup(tree, name), (*seen, name)) for name in names]
            if len(values) == 1 and _REF.fullmatch(value.strip()):
                return values[0]
            if all(isinstance(v, (int, float)) for v in values) and set(_REF.sub("", value).strip()) <= {"*", " "}:
                return math.prod(values)
            raise UserError(f"{path}: `!ref {value}`: only a key or a product of keys is read here")
        if isinstance(value, dict):
            return {k: resolve(v, seen) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, seen) for v in value]
        return value

    return resolve(tree)


def _lookup(tree: dict, dotted: str) -> Any:
    value = tree
    for part in dotted.split("."):
        value = value[part]
    return value


@dataclass
class ReleasedConfigs:
    """Our configs of a CosyVoice 2 folder's parts."""

    lm: LMConfig
    flow: CosyVoice2FlowConfig
    hift: HiFTConfig
    mel: MelConfig
    sampling: CosyVoiceSamplingOptions


def released_configs(folder: str | Path) -> ReleasedConfigs:
    """Reads `cosyvoice2.yaml` and `CosyVoice-BlankEN/config.json` of a CosyVoice 2 folder.

    Raises:
        UserError: a file is missing, or an entry the parts need is absent.
    """
    folder = Path(folder)
    config, qwen_config = folder / CONFIG_FILE, folder / QWEN_DIR / "config.json"
    for path in (config, qwen_config):
        if not path.is_file():
            raise UserError(f"{folder} is not a CosyVoice 2 folder: {path.relative_to(folder)} is missing")
    tree = read_hyperpyyaml(config)
    qwen = json.loads(qwen_config.read_text(encoding="utf-8"))
    try:
        return ReleasedConfigs(_lm(tree["llm"], qwen), _flow(tree["flow"]), reference_config(tree["hift"]),
                               _mel(tree["feat_extractor"]), _sampling(tree["llm"], tree["flow"]))
    except (KeyError, TypeError, IndexError) as e:
        raise UserError(f"{config}: an entry CosyVoice 2's parts need is missing or malformed ({e!r})") from None


def _lm(llm: dict, qwen: dict) -> LMConfig:
    if llm["llm_input_size"] != qwen["hidden_size"]:
        raise UserError(f"{CONFIG_FILE}: llm_input_size {llm['llm_input_size']} is not the Qwen2 width "
                        f"{qwen['hidden_size']} of {QWEN_DIR}/config.json")
    rope = (qwen.get("rope_parameters") or {}).get("rope_theta", qwen.get("rope_theta", 1e6))
    return LMConfig(style="cosyvoice2", n_text=qwen["vocab_size"], n_speech=llm["speech_token_size"],
                    d_model=qwen["hidden_size"], n_heads=qwen["num_attention_heads"],
                    n_kv_heads=qwen["num_key_value_heads"], n_layers=qwen["num_hidden_layers"],
                    ffn_dim=qwen["intermediate_size"], dropout=0.0, rope_base=float(rope),
                    norm_eps=float(qwen.get("rms_norm_eps", 1e-6)), bistream_ratio=tuple(llm.get("mix_ratio", (5, 15))),
                    bistream=True, release_layout=True)  # CosyVoice 2 trains its rows interleaved half the time


def _flow(flow: dict) -> CosyVoice2FlowConfig:
    encoder, decoder = flow["encoder"], flow["decoder"]
    cfm, estimator = decoder["cfm_params"].get("content", decoder["cfm_params"]), decoder["estimator"]
    ratio = int(flow["token_mel_ratio"])
    return CosyVoice2FlowConfig(
        n_speech=flow["vocab_size"], n_mels=flow["output_size"], spk_dim=flow["spk_embed_dim"],
        dim=encoder["output_size"], encoder_heads=encoder["attention_heads"], encoder_ffn=encoder["linear_units"],
        encoder_layers=encoder["num_blocks"], up_layers=UP_LAYERS, ratio=ratio, ahead=flow["pre_lookahead_len"],
        chunk_tokens=int(estimator["static_chunk_size"]) // ratio, channels=estimator["channels"][0],
        estimator_heads=estimator["num_heads"], head_dim=estimator["attention_head_dim"],
        blocks_per_stage=estimator["n_blocks"], mid_stages=estimator["num_mid_blocks"],
        encoder_dropout=float(encoder.get("dropout_rate", 0.1)), sigma_min=float(cfm["sigma_min"]),
        token_rate=float(flow["input_frame_rate"]), cfg_dropout=float(cfm.get("training_cfg_rate", 0.2)),
        t_schedule=cfm.get("t_scheduler", "cosine"))


def _mel(features: dict) -> MelConfig:
    return MelConfig(sample_rate=features["sampling_rate"], n_fft=features["n_fft"], hop_length=features["hop_size"],
                     win_length=features["win_size"], n_mels=features["num_mels"], fmin=float(features["fmin"]),
                     fmax=None if features.get("fmax") is None else float(features["fmax"]),
                     center=bool(features.get("center", False)))


def _sampling(llm: dict, flow: dict) -> CosyVoiceSamplingOptions:
    ras = llm.get("sampling") or {}
    cfm = flow["decoder"]["cfm_params"]
    cfm = cfm.get("content", cfm)
    return CosyVoiceSamplingOptions(top_p=float(ras.get("top_p", 0.8)), top_k=int(ras.get("top_k", 25)),
                                    repetition_window=int(ras.get("win_size", 10)), tau_r=float(ras.get("tau_r", 0.1)),
                                    min_token_text_ratio=MIN_TOKEN_TEXT_RATIO,
                                    max_token_text_ratio=MAX_TOKEN_TEXT_RATIO, flow_steps=FLOW_STEPS,
                                    cfg_scale=float(cfm.get("inference_cfg_rate", 0.7)))
