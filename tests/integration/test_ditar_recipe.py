"""The whole ditar recipe on a tiny slice of the built-in corpus with `ditar_tiny`: prepare ->
tokenize -> train_ditar (+ an exact resume of it) -> (train_vocoder, Griffin-Lim) -> synthesize ->
evaluate -> release -> the `synthesize` command."""

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from ttsframe.__main__ import main
from ttsframe.config.loading import RECIPE_DIR
from ttsframe.utils.atomic import read_jsonl

pytestmark = pytest.mark.integration


# synthesize stage options: two test items, short outputs, few ODE steps; a floor against the barely
# trained stop head ending at once
SYNTHESIS = {"max_items": 2, "max_frames_per_token": 2.0, "min_frames": 40, "nfe": 2}


def tiny_recipe(tmp_path):
    """recipes/ditar with SYNTHESIS added to its synthesize stage; -> (its path, its stage names)."""
    recipe = yaml.safe_load((RECIPE_DIR / "ditar" / "recipe.yaml").read_text())
    [synthesize] = [stage for stage in recipe["stages"] if stage["kind"] == "synthesize"]
    synthesize["options"] = {**synthesize.get("options", {}), **SYNTHESIS}
    (tmp_path / "recipe.yaml").write_text("# the ditar recipe, for the test\n" + yaml.safe_dump(recipe))
    return tmp_path / "recipe.yaml", [stage["name"] for stage in recipe["stages"]]


def test_ditar_recipe_end_to_end_and_exact_resume(tmp_path, capsys):
    recipe, stages = tiny_recipe(tmp_path)
    exp, train_stage = tmp_path / "exp", stages.index("train_ditar")
    overrides = [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}", "model=ditar_tiny",
                 "codec.griffin_lim_iters=8", "trainer.max_steps=4", "trainer.val_check_interval=2",
                 "trainer.limit_val_batches=1", "trainer.logger=csv", "trainer.num_workers=0",
                 "trainer.checkpoint_every_n_steps=2", "trainer.audio_samples=1", "trainer.progress_bar=false",
                 "model.dropout=0.1", "vocoder=griffin_lim", "vocoder.griffin_lim_iters=8",
                 "vocoder.num_val_utterances=1"]
    assert main(["run", str(recipe), "--stop-stage", str(train_stage), *overrides]) == 0
    train = exp / "train_ditar"
    assert (train / "checkpoints" / "last.ckpt").is_file() and list((train / "samples").glob("step*/*_ditar.wav"))
    summary = json.loads((train / "summary.json").read_text())
    assert summary["global_step"] == 4 and summary["best_val_loss"] is not None
    logged = (next(train.glob("logs/**/metrics.csv"))).read_text().splitlines()[0].split(",")
    # (4 steps: no train row; val/text_reliance only where a dev batch holds two different sentences)
    assert {"val/loss", "val/diffusion", "val/stop"} <= set(logged)

    # Exact resume: the train stage alone on the same shards, to step 2, then on to 4 from its checkpoint.
    # Before the evaluate stage: its ASR (CTranslate2) changes torch's thread count in this process.
    resumed = tmp_path / "resumed"
    shutil.copytree(exp / "shards", resumed / "shards")
    again = ["run", str(recipe), "--stage", str(train_stage), "--stop-stage", str(train_stage), f"exp_dir={resumed}",
             *[o for o in overrides if not o.startswith(("exp_dir=", "trainer.max_steps="))],
             "model.optim.decay_steps=4"]  # the straight run's lr horizon (its max_steps)
    assert main([*again, "trainer.max_steps=2"]) == 0
    assert main([*again, "trainer.max_steps=4"]) == 0
    assert "resuming from" in capsys.readouterr().out
    first = torch.load(train / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    second = torch.load(resumed / "train_ditar" / "checkpoints" / "last.ckpt", map_location="cpu",
                        weights_only=True)["state_dict"]
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)

    assert main(["run", str(recipe), "--stage", str(train_stage + 1), *overrides]) == 0
    assert sorted(p.name for p in (exp / ".done").glob("*.json")) == [
        f"stage{i:02d}_{name}.json" for i, name in enumerate(stages)]
    items = read_jsonl(exp / "synth" / "test" / "items.jsonl")  # two test items, each with another one as prompt
    assert len(items) == 2 and all(item["prompt_id"] != item["id"] for item in items)
    audio = [sf.read(item["synth_audio"]) for item in items]
    assert all(rate == 22050 and wav.size and np.isfinite(wav).all() for wav, rate in audio)
    assert all(item["rtf"] > 0 and math.isfinite(item["mel_distance_to_reference"]) for item in items)
    synthesis = json.loads((exp / "synth" / "test" / "summary.json").read_text())
    assert (synthesis["family"], synthesis["items"]) == ("ditar", 2) and synthesis["rtf"] > 0

    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["family"] == "ditar" and metrics["aggregates"]["synthesis"]["items"] == 2

    release = exp / "release"
    assert {"config.yaml", "model.safetensors", "mel.json", "vocoder.json", "vocab.json", "README.md"} <= {
        p.name for p in release.iterdir()}
    cli = tmp_path / "cli.wav"
    assert main(["synthesize", "--release", str(release), "--text", "The small dog runs home.",
                 "--prompt-wav", items[0]["prompt_audio"], "--prompt-text", items[0]["prompt_text"],
                 "--out", str(cli), "--seed", "3", "--nfe", "2", "--max-frames-per-token", "2", "--min-frames", "20",
                 "--device", "cpu"]) == 0
    assert sf.info(cli).frames >= 20 * 256 and sf.info(cli).samplerate == 22050
    capsys.readouterr()
