"""A recipe of recipes/ copied for a test, its synthesize stage given more options (few items, short outputs)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ttsframe.config.loading import RECIPE_DIR


def with_synthesis_options(name: str, folder: Path, options: dict) -> Path:
    """recipes/<name>/recipe.yaml written to `folder`, `options` added to its synthesize stage; returns the path."""
    recipe = yaml.safe_load((RECIPE_DIR / name / "recipe.yaml").read_text())
    for stage in recipe["stages"]:
        if stage["kind"] == "synthesize":
            stage["options"] = {**stage.get("options", {}), **options}
    path = folder / "recipe.yaml"
    path.write_text(f"# recipes/{name}, for a test\n" + yaml.safe_dump(recipe))
    return path
