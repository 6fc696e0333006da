"""`launcher=slurm` for a whole recipe: what each stage's job waits for, the sbatch calls, the
chain record, the tokenize array's scripts. sbatch here is a script that records its arguments
(the real cluster runs in tests/integration/test_slurm_chain.py)."""

import json
import shlex

import pytest
from omegaconf import OmegaConf

from ttsframe.config import load_run_config
from ttsframe.errors import UserError
from ttsframe.pipeline import stage_module
from ttsframe.pipeline.chain import needs
from ttsframe.pipeline.runner import fingerprint, marker_path, run_recipe
from ttsframe.training import slurm
from ttsframe.utils.atomic import write_json


def stage_needs(recipe: str, tmp_path) -> dict[str, list[str]]:
    cfg = load_run_config(recipe, [f"exp_dir={tmp_path}"])
    stages = OmegaConf.to_container(cfg.stages, resolve=True)
    return {s["name"]: needs(cfg, stages, i, tmp_path) for i, s in enumerate(stages)}


def test_each_stage_waits_for_the_stages_whose_output_it_reads(tmp_path):
    valle = stage_needs("valle", tmp_path)
    assert valle["tokenize"] == ["prepare"]
    assert valle["train_ar"] == valle["train_nar"] == ["tokenize"]  # side by side
    assert valle["synthesize"] == ["prepare", "tokenize", "train_ar", "train_nar"]
    assert valle["evaluate"] == [*valle["synthesize"], "synthesize"]
    assert valle["release"] == [*valle["synthesize"], "evaluate"]

    cosyvoice = stage_needs("cosyvoice", tmp_path)
    assert cosyvoice["tokenize"] == ["prepare", "train_tokenizer"]
    assert cosyvoice["train_lm"] == cosyvoice["train_flow"] == ["tokenize"]
    assert cosyvoice["train_vocoder"] == ["prepare"]  # audio, not shards: it runs beside the tokenizer
    assert cosyvoice["synthesize"] == ["prepare", "tokenize", "train_lm", "train_flow", "train_vocoder"]

    melle = stage_needs("melle", tmp_path)
    assert melle["synthesize"] == ["prepare", "tokenize", "train_melle", "train_vocoder"]


@pytest.fixture
def sbatch(tmp_path, monkeypatch):
    """An `sbatch` that appends its arguments to `calls` and answers job ids 101, 102, ..."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = bin_dir / "calls"
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho $((100 + $(wc -l < {calls})))\n')
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return lambda: [line.split() for line in calls.read_text().splitlines()]


def test_the_chain_submits_every_stage_after_the_jobs_it_needs(tmp_path, sbatch, capsys):
    exp = tmp_path / "exp"
    cfg = load_run_config("valle", [f"exp_dir={exp}", "launcher=slurm", "trainer.num_nodes=2"])
    summaries = run_recipe(cfg, 0)
    assert [s["job_id"] for s in summaries] == [str(i) for i in range(101, 108)]
    after = {call[-1].split("/")[-2]: [o for o in call if o.startswith("--dependency")] for call in sbatch()}
    assert after == {"data": [], "shards": ["--dependency=afterok:101"], "train_ar": ["--dependency=afterok:102"],
                     "train_nar": ["--dependency=afterok:102"], "synth": ["--dependency=afterok:101:102:103:104"],
                     "eval": ["--dependency=afterok:101:102:103:104:105"],
                     "release": ["--dependency=afterok:101:102:103:104:106"]}
    assert all("--kill-on-invalid-dep=yes" in call for call in sbatch()[1:])

    chain = json.loads((exp / "slurm_chain.json").read_text())["stages"]
    assert chain["train_nar"]["after"] == ["tokenize"] and chain["train_nar"]["after_jobs"] == ["102"]
    assert chain["synthesize"]["log"] == str((exp / "synth").resolve() / "slurm-105.out")
    out = capsys.readouterr().out
    assert all(f"as job {job}" in out for job in range(101, 108)) and "slurm-status" in out

    # A train stage asks for its trainer's shape and the preemption signal; the others for one task.
    train = (exp / "train_ar" / "slurm.sbatch").read_text()
    assert "--nodes=2" in train and "--signal=SIGUSR1@90" in train
    synth = (exp / "synth" / "slurm.sbatch").read_text()
    assert "--nodes=1" in synth and "--ntasks-per-node=1" in synth and "--signal" not in synth
    assert "--requeue" in synth and shlex.split(synth.splitlines()[-1])[-5:] == ["launcher=local", "--stage", "4",
                                                                               "--stop-stage", "4"]


def test_a_stage_done_is_skipped_and_its_dependants_do_not_wait_for_it(tmp_path, sbatch, capsys):
    exp = tmp_path / "exp"
    cfg = load_run_config("valle", [f"exp_dir={exp}", "launcher=slurm"])
    run_recipe(cfg, 0, 1)
    for index in (0, 1):  # their jobs finish and mark them done
        stage = OmegaConf.to_container(cfg.stages[index])
        stamp = fingerprint(cfg, stage_module(stage["kind"]).DEPENDS_ON, stage)
        write_json(marker_path(exp, index, stage["name"]), {"fingerprint": stamp})
    capsys.readouterr()
    run_recipe(cfg, 0, 2)
    out = capsys.readouterr().out
    assert "stage 0 prepare: already done" in out and "stage 1 tokenize: already done" in out
    assert len(sbatch()) == 3 and not any(o.startswith("--dependency") for o in sbatch()[-1])


def test_tokenize_array_writes_plan_array_and_final_scripts(tmp_path):
    cfg = load_run_config("valle", [f"exp_dir={tmp_path}", "launcher=slurm", "launcher.submit=false",
                                    "launcher.array=4"])
    [summary] = run_recipe(cfg, 1, 1)
    assert summary["pending"] and [j["role"] for j in summary["jobs"]] == ["plan", "array", "final"]
    shards = tmp_path / "shards"
    plan, array, final = ((shards / f).read_text().splitlines() for f in
                          ("slurm-plan.sbatch", "slurm-array.sbatch", "slurm.sbatch"))
    stage = " launcher=local --stage 1 --stop-stage 1"
    assert plan[-1].endswith(stage + " launcher.array=4 launcher.array_task=plan")
    assert array[-1].endswith(stage + " launcher.array=4 launcher.array_task=${SLURM_ARRAY_TASK_ID}")
    assert "#SBATCH --array=0-3" in array and f"#SBATCH --output={shards.resolve()}/slurm-%A_%a.out" in array
    assert "launcher.array" not in final[-1] and final[-1].endswith(stage)
    assert not any("--signal" in line for line in plan + array + final)


def test_array_task_settings(tmp_path):
    def task(*overrides):
        return slurm.array_task(load_run_config("valle", [f"exp_dir={tmp_path}", *overrides]))

    assert task() is None and task("launcher.array=4") is None
    assert task("launcher.array=4", "launcher.array_task=plan") == slurm.PLAN
    assert task("launcher.array=4", "launcher.array_task=3") == (3, 4)
    with pytest.raises(UserError, match="below launcher.array=4"):
        task("launcher.array=4", "launcher.array_task=4")
