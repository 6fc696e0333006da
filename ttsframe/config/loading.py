"""Loads a recipe with its config groups and command-line overrides into one validated config.

Order of precedence (later wins): schema defaults < configs/<group>/<choice>.yaml <
the recipe's `settings` < `group.key=value` overrides. `group=choice` picks another file.
Unknown keys and wrong types fail before any work starts, naming the key, the source and the
valid keys.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, Callable

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ttsframe.config.schema import RecipeConfig, TextConfig
from ttsframe.config.training import LauncherConfig, ModelConfig, TrainerConfig
from ttsframe.errors import ConfigError

INTERPOLATION = re.compile(r"\$\{([\w.]+)\}")  # a plain `${group.key}` reference
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"
RECIPE_DIR = REPO_ROOT / "recipes"
TOP_LEVEL_KEYS = ("exp_dir", "seed")


def _data_schema(raw: dict, source: str) -> type:
    from data_prep import corpus_schema

    return corpus_schema(_selector(raw, "corpus", source))


def _codec_schema(raw: dict, source: str) -> type:
    from ttsframe.codecs import codec_schema

    return codec_schema(_selector(raw, "name", source))


def _text_schema(raw: dict, source: str) -> type:
    return TextConfig


def _tokenizer_schema(raw: dict, source: str) -> type:
    from ttsframe.tokenizers.build import tokenizer_schema

    return tokenizer_schema(_selector(raw, "name", source))


def _model_schema(raw: dict, source: str) -> type:
    return ModelConfig


def _trainer_schema(raw: dict, source: str) -> type:
    return TrainerConfig


def _launcher_schema(raw: dict, source: str) -> type:
    return LauncherConfig


def _vocoder_schema(raw: dict, source: str) -> type:
    from ttsframe.vocoders.config import VocoderConfig

    return VocoderConfig


def _eval_schema(raw: dict, source: str) -> type:
    from ttsframe.config.evaluation import EvalConfig

    return EvalConfig


# Config group -> function(raw yaml dict, source) -> the dataclass that validates it.
GROUPS: dict[str, Callable[[dict, str], type]] = {
    "data": _data_schema,
    "codec": _codec_schema,
    "text": _text_schema,
    "tokenizer": _tokenizer_schema,
    "model": _model_schema,
    "trainer": _trainer_schema,
    "launcher": _launcher_schema,
    "vocoder": _vocoder_schema,
    "eval": _eval_schema,
}


def _selector(raw: dict, key: str, source: str) -> str:
    if not isinstance(raw.get(key), str):
        raise ConfigError(f"{source}: missing `{key}:` (which implementation this config is for)")
    return raw[key]


def group_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def recipe_names() -> list[str]:
    return sorted(p.parent.name for p in RECIPE_DIR.glob("*/recipe.yaml"))


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def check_keys(schema: type, raw: Any, source: str, prefix: str) -> None:
    """Fails on keys the dataclass `schema` does not declare, recursively."""
    if not isinstance(raw, dict):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(
                f"{source}: unknown key `{prefix}{key}`; valid keys of {prefix.rstrip('.') or 'it'}: "
                + ", ".join(sorted(fields))
            )
        sub = hints[key]
        if dataclasses.is_dataclass(sub):
            check_keys(sub, value, source, f"{prefix}{key}.")


def validated(schema: type, layers: list[tuple[str, dict]], prefix: str) -> DictConfig:
    """Merges (source, dict) layers over the schema's defaults, checking keys and types."""
    node = OmegaConf.structured(schema)
    for source, layer in layers:
        check_keys(schema, layer, source, prefix)
        try:
            node = OmegaConf.merge(node, layer)
        except OmegaConfBaseException as e:
            key = f"{prefix}{e.full_key}" if getattr(e, "full_key", None) else prefix.rstrip(".")
            msg = str(e).splitlines()[0]
            raise ConfigError(f"{source}: bad value for `{key}`: {msg}") from None
    missing = missing_keys(node)
    if missing:
        raise ConfigError(f"{layers[-1][0]}: required keys not set: {', '.join(prefix + k for k in missing)}")
    return node


def config_keys(node, prefix: str = ""):
    """Every key under `node`, depth first, without resolving interpolations (a recipe's may name
    another group, e.g. `${model.init_from}/hift.pt`, resolved once the run's config has every
    group): (dotted name, its parent node, its key)."""
    is_list = isinstance(node, ListConfig)
    for key in (range(len(node)) if is_list else node.keys()):
        name = f"{prefix}[{key}]" if is_list else f"{prefix}.{key}" if prefix else str(key)
        yield name, node, key
        if not OmegaConf.is_missing(node, key) and not OmegaConf.is_interpolation(node, key) \
                and OmegaConf.is_config(node[key]):
            yield from config_keys(node[key], name)


def missing_keys(node: DictConfig) -> list[str]:
    """The keys left at `???`, sorted: `OmegaConf.missing_keys` without resolving interpolations."""
    return sorted(name for name, parent, key in config_keys(node) if OmegaConf.is_missing(parent, key))


def load_group(group: str, choice: str, extra: list[tuple[str, dict]] = ()) -> DictConfig:
    """Loads configs/<group>/<choice>.yaml (plus extra layers), validated by the group's schema."""
    if group not in GROUPS:
        raise ConfigError(f"unknown config group `{group}`; groups: {', '.join(GROUPS)}")
    path = CONFIG_DIR / group / f"{choice}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"no config `{group}={choice}` ({path} missing); choices: {', '.join(group_choices(group))}"
        )
    layers = [(str(path), read_yaml(path)), *extra]
    merged_raw: dict = {}
    for _, layer in layers:
        merged_raw.update(layer)
    schema = GROUPS[group](merged_raw, str(path))
    return validated(schema, layers, f"{group}.")


def parse_overrides(items: list[str]) -> tuple[dict[str, str], dict[str, dict], dict[str, Any]]:
    """Splits `key=value` items into group choices, dotted group settings and top-level keys."""
    choices: dict[str, str] = {}
    settings: dict[str, dict] = {}
    top: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override `{item}` is not key=value (e.g. data=ljspeech data.root=/data/LJSpeech-1.1)")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        group, _, rest = key.partition(".")
        if not rest and group in GROUPS:
            choices[group] = str(value)
        elif rest and group in GROUPS:
            node = settings.setdefault(group, {})
            *parents, leaf = rest.split(".")
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
        elif key in TOP_LEVEL_KEYS:
            top[key] = value
        else:
            raise ConfigError(
                f"override `{item}`: unknown key `{key}`; use a group ({', '.join(GROUPS)}), "
                f"group.key=value, or one of {', '.join(TOP_LEVEL_KEYS)}"
            )
    return choices, settings, top


def recipe_path(recipe: str) -> Path:
    path = Path(recipe)
    if path.is_file():
        return path
    path = RECIPE_DIR / recipe / "recipe.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown recipe `{recipe}`; recipes: {', '.join(recipe_names())}")
    return path


def load_recipe(recipe: str) -> DictConfig:
    path = recipe_path(recipe)
    raw = read_yaml(path)
    node = validated(RecipeConfig, [(str(path), raw)], "")
    for group in node.defaults:
        if group not in GROUPS:
            raise ConfigError(f"{path}: defaults: unknown group `{group}`; groups: {', '.join(GROUPS)}")
    for group in node.settings:
        if group not in GROUPS:
            raise ConfigError(f"{path}: settings: unknown group `{group}`; groups: {', '.join(GROUPS)}")
    return node


def load_run_config(recipe: str, overrides: list[str] = ()) -> DictConfig:
    """The full, validated config of a recipe run: recipe fields plus one node per group."""
    rec = load_recipe(recipe)
    source = str(recipe_path(recipe))
    choices, settings, top = parse_overrides(list(overrides))
    root: dict[str, Any] = {
        "recipe": rec.name,
        "recipe_file": str(recipe_path(recipe).resolve()),
        "exp_dir": top.get("exp_dir", rec.exp_dir or f"exp/{rec.name}"),
        "seed": int(top.get("seed", rec.seed)),
        "stages": OmegaConf.to_container(rec.stages),
        "overrides": list(overrides),  # as given, to rebuild the command line (SLURM jobs, DDP workers)
        "choices": {},
    }
    for group in GROUPS:
        choice = choices.get(group, rec.defaults.get(group))
        if choice is None:
            continue
        extra = []
        if group in rec.settings:
            extra.append((f"{source} (settings.{group})", OmegaConf.to_container(rec.settings[group])))
        if group in settings:
            extra.append(("command line", settings[group]))
        root[group] = load_group(group, choice, extra)
        root["choices"][group] = choice
    unused = set(settings) - set(root)
    if unused:
        raise ConfigError(f"command line: overrides for group(s) {sorted(unused)} that this recipe does not use")
    cfg = OmegaConf.create(root)
    check_null_references(cfg)
    OmegaConf.resolve(cfg)
    return cfg


def check_null_references(cfg: DictConfig) -> None:
    """A path built from a key left null (`${model.init_from}/hift.pt` with `model.init_from=null`)
    would read "None/hift.pt": fail first, naming the key to set."""
    for name, parent, key in config_keys(cfg):
        if not OmegaConf.is_interpolation(parent, key):
            continue
        raw = parent._get_node(key)._value()  # the text with its ${...}, unresolved
        refs = INTERPOLATION.findall(raw)
        if raw in {f"${{{ref}}}" for ref in refs}:  # a bare ${x} may be null
            continue
        for ref in refs:
            if OmegaConf.select(cfg, ref, throw_on_missing=False) is None:
                raise ConfigError(f"`{name}` is {raw!r}, but `{ref}` is null: set {ref}=<...> on the command line")
