"""The whole melle recipe on a tiny slice of the built-in corpus: prepare -> tokenize -> train_melle
-> (train_vocoder, Griffin-Lim) -> synthesize -> release -> the `synthesize` command."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import yaml

from ttsframe.__main__ import main
from ttsframe.config.loading import RECIPE_DIR

pytestmark = pytest.mark.integration


def tiny_recipe(tmp_path):
    """recipes/melle with a synthesis stage limited to two test items and short outputs."""
    recipe = yaml.safe_load((RECIPE_DIR / "melle" / "recipe.yaml").read_text())
    for stage in recipe["stages"]:
        if stage["kind"] == "synthesize":
            stage["options"] = {**stage.get("options", {}), "max_items": 2, "max_frames_per_token": 2.0,
                                "min_frames": 40}  # the barely trained stop head would end at once
    path = tmp_path / "recipe.yaml"
    path.write_text("# test recipe\n" + yaml.safe_dump(recipe))
    return path, recipe["stages"]


def test_melle_recipe_end_to_end(tmp_path, capsys):
    recipe, stages = tiny_recipe(tmp_path)
    exp = tmp_path / "exp"
    overrides = [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}",
                 "codec.griffin_lim_iters=8", "trainer.max_steps=4", "trainer.val_check_interval=2",
                 "trainer.limit_val_batches=1", "trainer.logger=csv", "trainer.num_workers=0",
                 "trainer.checkpoint_every_n_steps=2", "trainer.audio_samples=0", "trainer.progress_bar=false"]
    if any(s["kind"] == "train_vocoder" for s in stages):  # the training-free vocoder: the stage only measures it
        overrides += ["vocoder=griffin_lim", "vocoder.griffin_lim_iters=8", "vocoder.num_val_utterances=1"]
    assert main(["run", str(recipe), *overrides]) == 0
    assert (exp / "train_melle" / "checkpoints" / "last.ckpt").is_file()

    out = exp / "synth" / "test"
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items) == 2 and all(i["prompt_id"] != i["id"] for i in items)
    for item in items:
        wav, rate = sf.read(item["synth_audio"])
        assert rate == 22050 and len(wav) > 0 and np.isfinite(wav).all()
        assert item["rtf"] > 0 and math.isfinite(item["mel_distance_to_reference"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["family"] == "melle" and summary["items"] == 2 and summary["rtf"] > 0
    assert summary["mel_distance_to_reference"] > 0
    print(f"melle tiny run: RTF {summary['rtf']}, mel distance {summary['mel_distance_to_reference']}")

    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["family"] == "melle" and metrics["aggregates"]["synthesis"]["items"] == 2
    assert metrics["aggregates"]["resynthesis"]["pesq"] is not None  # the vocoder's resynthesis, sample-aligned

    release = exp / "release"
    assert {"config.yaml", "model.safetensors", "mel.json", "vocoder.json", "vocab.json", "README.md"} <= {
        p.name for p in release.iterdir()}
    assert json.loads((release / "vocoder.json").read_text())["name"] == "griffin_lim"
    cli = tmp_path / "cli.wav"
    assert main(["synthesize", "--release", str(release), "--text", "The small dog runs home.",
                 "--prompt-wav", items[0]["prompt_audio"], "--prompt-text", items[0]["prompt_text"],
                 "--out", str(cli), "--seed", "3", "--max-frames-per-token", "2", "--min-frames", "20", "--device", "cpu"]) == 0
    assert sf.info(cli).frames >= 20 * 256 and sf.info(cli).samplerate == 22050
    capsys.readouterr()
