"""Every YAML in the tree loads against its schema; every recipe resolves."""

from pathlib import Path

import pytest

from ttsframe.config import GROUPS, load_group, load_run_config
from ttsframe.config.loading import CONFIG_DIR, RECIPE_DIR, group_choices, recipe_names
from ttsframe.pipeline import STAGE_KINDS

CONFIG_FILES = sorted(CONFIG_DIR.glob("*/*.yaml"))
RECIPES = recipe_names()


def test_tree_has_configs_and_recipes():
    assert {p.parent.name for p in CONFIG_FILES} >= {"data", "codec", "text"}
    assert "valle" in RECIPES
    assert all(p.parent.name in GROUPS for p in CONFIG_FILES), "a folder under configs/ is not a known group"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_group_config_loads(path: Path):
    node = load_group(path.parent.name, path.stem)
    assert node is not None
    first = path.read_text().splitlines()[0]
    assert first.startswith("#") and ("make " in first or "python -m ttsframe" in first), \
        f"{path}: first line must be a comment giving the command that uses it"


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_resolves(recipe: str):
    cfg = load_run_config(recipe)
    assert cfg.stages, recipe
    for stage in cfg.stages:
        assert stage.kind in STAGE_KINDS
    for group, choice in cfg.choices.items():
        assert choice in group_choices(group)
    assert (RECIPE_DIR / recipe / "recipe.yaml").read_text().startswith("#")


@pytest.mark.parametrize("recipe,family_model", [("melle", "melle"), ("ditar", "ditar")])
def test_pointer_presets_reach_the_model(recipe, family_model):
    """`model=<family>_cpu_pointer` sets its pointer fields through the train stage's overrides."""
    import importlib

    from ttsframe.config.training import ARCHITECTURE_FIELDS

    cfg = load_run_config(recipe, [f"model={family_model}_cpu_pointer"])
    overrides = {k: cfg.model[k] for k in ARCHITECTURE_FIELDS if cfg.model[k] is not None}
    task_module = importlib.import_module(f"ttsframe.models.{family_model}.task")
    config = task_module.model_config(cfg.model.preset, 40, 0, 0, **overrides)
    assert config["phoneme_pointer"] and config["duration_plan"] and config["pointer_context"] == 3
