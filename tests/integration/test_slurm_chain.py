"""`launcher=slurm` for whole recipes on a real SLURM cluster (two nodes on this machine, see
tests/slurm_cluster.py): the valle recipe as a chain of jobs, a failed stage cancelling the
stages after it, and the tokenize stage as a job array."""

import json
import re
import shutil
import tarfile

import pytest
import yaml

from ttsframe.__main__ import main
from ttsframe.config.loading import RECIPE_DIR
from ttsframe.pipeline.runner import marker_path

pytestmark = [pytest.mark.integration, pytest.mark.slurm]
STAGES = ["prepare", "tokenize", "train_ar", "train_nar", "synthesize", "evaluate", "release"]
FOLDERS = dict(zip(STAGES, ["data", "shards", "train_ar", "train_nar", "synth", "eval", "release"]))
TINY = ["data=builtin_tiny", "codec.n_codebooks=2", "codec.codebook_size=32", "trainer.limit_val_batches=1",
        "trainer.logger=csv", "trainer.num_workers=0", "trainer.audio_samples=0", "trainer.progress_bar=false",
        "trainer.num_sanity_val_steps=0", "trainer.max_steps=2", "trainer.val_check_interval=2",
        "trainer.checkpoint_every_n_steps=2",
        # the evaluation of the synthesis alone, WER (greedy) and speaker similarity: seconds, not a minute
        "eval.mos=[]", "eval.ground_truth=false", "eval.resynthesis=false", "eval.signal=false",
        "eval.asr.beam_size=1"]
SLURM = ["launcher=slurm", "launcher.cpus_per_task=1", "launcher.time=10"]


def tiny_recipe(path, shard_size=None):
    """recipes/valle with a synthesis of two test items (and tokenize shards of `shard_size`)."""
    recipe = yaml.safe_load((RECIPE_DIR / "valle" / "recipe.yaml").read_text())
    for stage in recipe["stages"]:
        if stage["kind"] == "synthesize":
            stage["options"] = {**stage.get("options", {}), "max_items": 2, "max_frames_per_token": 3.0,
                                "max_frames_base": 10}
        if stage["kind"] == "tokenize" and shard_size:
            stage["options"] = {"shard_size": shard_size}
    assert [s["name"] for s in recipe["stages"]] == STAGES
    path.write_text("# test recipe\n" + yaml.safe_dump(recipe))
    return str(path)


@pytest.fixture(scope="module")
def prepared(slurm_cluster, tmp_path_factory):
    """The tiny valle recipe's stages 0-1 run here: (recipe file, exp dir, corpus cache dir)."""
    root = tmp_path_factory.mktemp("chain")
    recipe, exp, cache = tiny_recipe(root / "recipe.yaml"), root / "exp", root / "cache"
    assert main(["run", recipe, "--stage", "0", "--stop-stage", "1", f"exp_dir={exp}", f"data.cache_dir={cache}",
                 *TINY]) == 0
    return recipe, exp, cache


def copy_stages(exp, to, folders):
    """A new exp dir with `folders` of `exp` and its done markers."""
    for folder in [*folders, ".done"]:
        shutil.copytree(exp / folder, to / folder)
    return to


def submitted(out: str) -> dict[str, str]:
    """{script path: job id} of the `slurm: submitted ... as job N` lines."""
    return dict(re.findall(r"slurm: submitted (\S+) as job (\d+)", out))


def ended_well(cluster, job_id, timeout) -> dict:
    job = cluster.wait(job_id, timeout=timeout)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), (job_id, job["StdOut"],
                                                                         tail(job["StdErr"]))
    return job


def tail(path, chars=3000):
    try:
        return open(path, errors="replace").read()[-chars:]
    except OSError:
        return ""


def test_the_recipe_runs_as_a_chain_of_jobs(slurm_cluster, prepared, tmp_path, capsys):
    recipe, _, cache = prepared
    exp = tmp_path / "exp"
    command = ["run", recipe, f"exp_dir={exp}", f"data.cache_dir={cache}", *TINY, *SLURM]
    capsys.readouterr()
    assert main(command) == 0  # submits all seven stages and returns
    out = capsys.readouterr().out
    chain = json.loads((exp / "slurm_chain.json").read_text())["stages"]
    assert list(chain) == STAGES
    jobs = {name: chain[name]["job_id"] for name in STAGES}
    assert slurm_cluster.job(jobs["release"])["JobState"] == "PENDING"  # returned long before the chain ends
    assert sorted(submitted(out).values(), key=int) == list(jobs.values())
    for name in STAGES:  # the runner printed each job id and log
        assert chain[name]["log"] == str(exp / FOLDERS[name] / f"slurm-{jobs[name]}.out")
        assert f"as job {jobs[name]}" in out and chain[name]["log"] in out

    # What each stage waits for follows from what it reads; the two train stages only need the shards.
    after = {name: chain[name]["after"] for name in STAGES}
    assert after == {"prepare": [], "tokenize": ["prepare"], "train_ar": ["tokenize"], "train_nar": ["tokenize"],
                     "synthesize": ["prepare", "tokenize", "train_ar", "train_nar"],
                     "evaluate": ["prepare", "tokenize", "train_ar", "train_nar", "synthesize"],
                     "release": ["prepare", "tokenize", "train_ar", "train_nar", "evaluate"]}
    assert all(chain[n]["after_jobs"] == [jobs[a] for a in after[n]] for n in STAGES)

    # Every job completed, none before the jobs it waits for had ended.
    ended = {name: ended_well(slurm_cluster, jobs[name], timeout=300) for name in reversed(STAGES)}
    for name in STAGES:
        for needed in after[name]:
            assert ended[name]["StartTime"] >= ended[needed]["EndTime"], (name, needed)
        assert marker_path(exp, STAGES.index(name), name).is_file()
    assert (exp / "release" / "ar.safetensors").is_file()
    assert len(json.loads((exp / "eval" / "test" / "metrics.json").read_text())["items"]) == 2

    # The status command agrees; running the chain again submits nothing.
    assert main(["slurm-status", recipe, f"exp_dir={exp}"]) == 0
    out = capsys.readouterr().out
    for index, name in enumerate(STAGES):
        assert f"stage {index} {name}: job {jobs[name]} COMPLETED" in out
    assert main(command) == 0
    out = capsys.readouterr().out
    assert all(f"stage {i} {n}: already done" in out for i, n in enumerate(STAGES)) and "submitted" not in out


def test_a_failed_stage_cancels_the_stages_after_it(slurm_cluster, prepared, tmp_path, capsys):
    recipe, done, cache = prepared
    exp = copy_stages(done, tmp_path / "exp", ["data", "shards"])
    # A bad setting only train_ar reads: its job fails when it builds its Trainer.
    command = ["run", recipe, "--stage", "2", f"exp_dir={exp}", f"data.cache_dir={cache}", *TINY, *SLURM,
               "trainer.stage_max_steps.train_ar=-5"]
    capsys.readouterr()
    assert main(command) == 0
    chain = json.loads((exp / "slurm_chain.json").read_text())["stages"]
    jobs = {name: entry["job_id"] for name, entry in chain.items()}
    assert list(jobs) == STAGES[2:] and chain["train_ar"]["after"] == chain["train_nar"]["after"] == []

    ar = slurm_cluster.wait(jobs["train_ar"], timeout=120)
    assert (ar["JobState"], ar["ExitCode"]) == ("FAILED", "1:0")
    ended_well(slurm_cluster, jobs["train_nar"], timeout=180)  # not waiting for train_ar: it trains on
    for name in ("synthesize", "evaluate", "release"):
        job = slurm_cluster.wait(jobs[name], timeout=60)
        assert (job["JobState"], job["Reason"]) == ("CANCELLED", "DependencyNeverSatisfied"), name
        # never ran: no log of it anywhere (under load SLURM may still stamp a StartTime on the cancel)
        assert not list(exp.rglob(f"slurm-{jobs[name]}.out")), name
    assert not marker_path(exp, 2, "train_ar").exists() and marker_path(exp, 3, "train_nar").is_file()

    # The status command names the failed job, its log and the error at its end, and fails.
    assert main(["slurm-status", recipe, f"exp_dir={exp}"]) == 1
    out = capsys.readouterr().out
    log = exp / "train_ar" / f"slurm-{jobs['train_ar']}.out"
    assert f"failed: stage 2 train_ar, job {jobs['train_ar']} (FAILED); its log: {log}" in out
    assert "`max_steps` must be a non-negative integer" in out
    assert "cancelled because a job they wait for failed: synthesize, evaluate, release" in out
    assert f"stage 3 train_nar: job {jobs['train_nar']} COMPLETED" in out

    # So does the runner when the chain is run again (here writing the scripts only): train_nar is done.
    assert main([*command, "launcher.submit=false"]) == 0
    out = capsys.readouterr().out
    assert f"stage 2 train_ar: its last job {jobs['train_ar']} FAILED (exit 1:0, NonZeroExitCode); log {log}" in out
    assert "stage 3 train_nar: already done" in out
    assert f"stage 4 synthesize: its last job {jobs['synthesize']} CANCELLED (DependencyNeverSatisfied)" in out
    assert "slurm: submitted" not in out


def shard_contents(shard_dir):
    """The split indexes, and every member of every shard (keys, tokens, codes, meta) as bytes."""
    found = {f"{split}.index.json": json.loads((shard_dir / f"{split}.index.json").read_text())
             for split in ("train", "dev", "test")}
    for path in sorted(shard_dir.glob("*.tar")):
        with tarfile.open(path) as tar:
            found[path.name] = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    return found


def test_tokenize_as_a_job_array_writes_what_one_process_writes(slurm_cluster, prepared, tmp_path, capsys):
    _, done, cache = prepared
    recipe = tiny_recipe(tmp_path / "recipe.yaml", shard_size=10)  # train: 5 shards, dev and test: 1
    stage = ["--stage", "1", "--stop-stage", "1", f"data.cache_dir={cache}", *TINY]
    local = copy_stages(done, tmp_path / "local", ["data"])
    assert main(["run", recipe, *stage, f"exp_dir={local}"]) == 0
    expected = shard_contents(local / "shards")
    assert sorted(k for k in expected if k.startswith("train-")) == [f"train-00000{i}.tar" for i in range(5)]

    exp = copy_stages(done, tmp_path / "array", ["data"])
    shards = exp / "shards"
    command = ["run", recipe, *stage, f"exp_dir={exp}", *SLURM, "launcher.array=2"]

    def run_array() -> dict[str, str]:
        capsys.readouterr()
        assert main(command) == 0
        jobs = {p.split("/")[-1]: j for p, j in submitted(capsys.readouterr().out).items()}
        assert list(jobs) == ["slurm-plan.sbatch", "slurm-array.sbatch", "slurm.sbatch"]
        final = slurm_cluster.wait(jobs["slurm.sbatch"], timeout=180)
        ended_well(slurm_cluster, jobs["slurm-plan.sbatch"], 5)
        tasks = [ended_well(slurm_cluster, f"{jobs['slurm-array.sbatch']}_{k}", 5) for k in range(2)]
        assert [t["ArrayTaskId"] for t in tasks] == ["0", "1"]
        assert (final["JobState"], final["ExitCode"]) == ("COMPLETED", "0:0"), tail(final["StdErr"])
        assert "--array=0-1" in (shards / "slurm-array.sbatch").read_text()
        return jobs

    jobs = run_array()
    assert shard_contents(shards) == expected
    assert marker_path(exp, 1, "tokenize").is_file()  # the final job marked the stage done
    array = jobs["slurm-array.sbatch"]
    assert "task 1 of 2 written" in (shards / f"slurm-{array}_1.out").read_text()

    # A task killed before it finished shard 3 (its tar and .done gone, the stage unmarked): only it is written again.
    for path in (shards / "train-000003.tar", shards / "train-000003.done.json", marker_path(exp, 1, "tokenize")):
        path.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in [*shards.glob("*.tar"), *shards.glob("*.done.json")]}
    run_array()
    assert {name: (shards / name).stat().st_mtime_ns for name in kept} == kept
    assert (shards / "train-000003.tar").is_file() and shard_contents(shards) == expected
