"""Stage runner: order, completion markers, skip on re-run, re-run on config change or force."""

import sys
import types

import pytest

from ttsframe import pipeline
from ttsframe.config import load_run_config
from ttsframe.errors import UserError
from ttsframe.pipeline.runner import run_recipe


@pytest.fixture
def counting_stages(monkeypatch):
    calls = []
    module = types.ModuleType("fake_stage")
    module.OUTPUT_DIR = "fake"
    module.DEPENDS_ON = ("data",)

    def run(cfg, ctx):
        calls.append(ctx.name)
        (ctx.out_dir / f"{ctx.name}.txt").write_text("x")
        return {"n": len(calls)}

    module.run = run
    monkeypatch.setitem(sys.modules, "fake_stage", module)
    monkeypatch.setitem(pipeline.STAGE_KINDS, "prepare", "fake_stage")
    monkeypatch.setitem(pipeline.STAGE_KINDS, "tokenize", "fake_stage")
    return calls


def test_runs_marks_skips_and_reruns(tmp_path, counting_stages):
    cfg = load_run_config("valle", [f"exp_dir={tmp_path}"])
    run_recipe(cfg, 0, 1)
    assert counting_stages == ["prepare", "tokenize"]
    assert (tmp_path / "fake" / "config.yaml").is_file()
    assert (tmp_path / ".done" / "stage00_prepare.json").is_file()

    run_recipe(cfg, 0, 1)  # both done: nothing runs
    assert counting_stages == ["prepare", "tokenize"]

    run_recipe(cfg, 1, 1, force=True)
    assert counting_stages == ["prepare", "tokenize", "tokenize"]

    changed = load_run_config("valle", [f"exp_dir={tmp_path}", "data.max_duration=9"])
    run_recipe(changed, 0, 0)  # data changed: prepare is stale
    assert counting_stages[-1] == "prepare" and len(counting_stages) == 4


def test_stage_out_of_range(tmp_path, counting_stages):
    cfg = load_run_config("valle", [f"exp_dir={tmp_path}"])
    with pytest.raises(UserError, match=r"stages 0\.\.\d+ \(0 prepare, 1 tokenize"):
        run_recipe(cfg, 9)
