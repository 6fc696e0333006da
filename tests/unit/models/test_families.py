"""Every model family is one folder: registered in FAMILIES, exporting the same names (one SPEC
whose parts belong to it), importing no other family; inference/ and release.py import no family."""

import ast
import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ttsframe
from ttsframe.errors import UserError
from ttsframe.models.registry import FAMILIES, all_tasks, family
from ttsframe.models.spec import FamilySpec

PACKAGE = Path(ttsframe.__file__).parent
FOLDERS = sorted(p.name for p in (PACKAGE / "models").iterdir() if (p / "__init__.py").is_file())


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (`from a import b` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level <= 1, f"{path}: relative import out of its folder"
            if node.level == 0 and node.module:
                names.update({node.module, *(f"{node.module}.{alias.name}" for alias in node.names)})
    return names


def other_families(name: str) -> tuple[str, ...]:
    return tuple(f"ttsframe.models.{other}" for other in FOLDERS if other != name)


def touches(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_every_family_folder_is_registered():
    assert sorted(FAMILIES) == FOLDERS
    assert all(FAMILIES[name] == f"ttsframe.models.{name}" for name in FAMILIES)


@pytest.mark.parametrize("name", FOLDERS)
def test_no_family_imports_another(name):
    others = other_families(name)
    for path in sorted((PACKAGE / "models" / name).rglob("*.py")):
        wrong = sorted(m for m in imported_modules(path) if touches(m, others))
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"
    spec = family(name)
    refs = [*spec.tasks.values(), spec.synthesizer, spec.options]
    assert not [r for r in refs if touches(r.partition(":")[0], others)]


def test_families_export_the_same_names():
    exported = {name: tuple(importlib.import_module(FAMILIES[name]).__all__) for name in FAMILIES}
    assert set(exported.values()) == {("SPEC",)}, exported


@pytest.mark.parametrize("name", list(FAMILIES))
def test_spec_parts_belong_to_their_family(name):
    spec = family(name)
    assert isinstance(spec, FamilySpec) and spec.name == name and spec.tasks
    synthesizer = spec.synthesizer_class()
    assert synthesizer.FAMILY == name and synthesizer.OPTIONS is spec.options_class()
    assert dataclasses.is_dataclass(synthesizer.OPTIONS) and synthesizer.OPTIONS.__dataclass_params__.frozen
    for task in spec.tasks:
        cls = spec.task_class(task)
        assert (cls.FAMILY, cls.TASK) == (name, task)


def test_tasks_are_unique_across_families():
    assert sum(len(family(name).tasks) for name in FAMILIES) == len(all_tasks())


def test_unknown_family_fails_listing_the_known_ones():
    with pytest.raises(UserError, match="unknown model family 'nope'; families: " + ", ".join(FAMILIES)):
        family("nope")


def test_shared_code_imports_no_family():
    families = tuple(f"ttsframe.models.{name}" for name in FOLDERS)
    for path in sorted((PACKAGE / "inference").rglob("*.py")):
        wrong = sorted(m for m in imported_modules(path) if touches(m, (*families, "ttsframe.release")))
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"
    wrong = sorted(m for m in imported_modules(PACKAGE / "release.py") if touches(m, families))
    assert not wrong, f"release.py imports {wrong} (it finds families through FAMILIES)"


def test_reading_the_registry_imports_neither_torch_nor_lightning():
    code = ("import sys\n"
            "from ttsframe.models.registry import FAMILIES, all_tasks, family\n"
            "all_tasks(); [family(name).synthesizer for name in FAMILIES]\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"})
