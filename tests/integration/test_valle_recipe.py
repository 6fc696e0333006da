"""The whole valle recipe on a tiny slice of the built-in corpus: prepare -> ... -> evaluate -> release -> CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from ttsframe.__main__ import main
from ttsframe.config.loading import RECIPE_DIR

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def tiny_recipe(tmp_path):
    """recipes/valle with a synthesis stage limited to two test items."""
    recipe = yaml.safe_load((RECIPE_DIR / "valle" / "recipe.yaml").read_text())
    for stage in recipe["stages"]:
        if stage["kind"] == "synthesize":
            stage["options"] = {**stage.get("options", {}), "max_items": 2, "max_frames_per_token": 3.0,
                                "max_frames_base": 10}
    path = tmp_path / "recipe.yaml"
    path.write_text("# test recipe\n" + yaml.safe_dump(recipe))
    return path, [s["name"] for s in recipe["stages"]]


def test_valle_recipe_end_to_end(tmp_path, capsys):
    recipe, stages = tiny_recipe(tmp_path)
    exp = tmp_path / "exp"
    overrides = [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}",
                 "codec.n_codebooks=2", "codec.codebook_size=32", "trainer.max_steps=4",
                 "trainer.val_check_interval=2", "trainer.limit_val_batches=1", "trainer.logger=csv",
                 "trainer.num_workers=0", "trainer.checkpoint_every_n_steps=2", "trainer.audio_samples=1",
                 "trainer.progress_bar=false", "trainer.snapshot_every_n_steps=2"]
    assert main(["run", str(recipe), *overrides]) == 0
    for name in ("train_ar", "train_nar"):
        assert (exp / name / "checkpoints" / "best.ckpt").is_file()
        samples = sorted((exp / name / "samples").glob("step*/*"))
        wavs = [p for p in samples if p.suffix == ".wav"]
        assert wavs and len(wavs) == len([p for p in samples if p.suffix == ".png"]), samples
        assert all(sf.info(p).frames > 0 for p in wavs)
    items = [json.loads(line) for line in (exp / "synth" / "test" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 2 and all(i["prompt_id"] != i["id"] for i in items)
    for item in items:
        wav, _ = sf.read(item["synth_audio"])
        assert len(wav) > 0 and np.isfinite(wav).all()
    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["systems"] == ["ground_truth", "resynthesis", "synthesis"] and len(metrics["items"]) == 2
    for system in metrics["systems"]:
        assert {"wer", "cer", "sim_to_prompt", "items"} <= set(metrics["aggregates"][system])
        assert metrics["aggregates"][system]["items"] == 2
    assert {"mcd", "pesq", "stoi"} <= set(metrics["aggregates"]["resynthesis"])
    assert metrics["aggregates"]["synthesis"]["rtf"] > 0 and "utmos" in metrics["skipped"]
    assert (exp / "eval" / "test" / "report.html").is_file()
    release = exp / "release"
    assert {"config.yaml", "ar.safetensors", "nar.safetensors", "vocab.json", "README.md"} <= {
        p.name for p in release.iterdir()}
    assert "wer" in (release / "README.md").read_text().lower()

    # the WER curve over the AR's kept snapshots (steps 2 and 4), NAR at its last checkpoint
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wer_curve.py"), str(exp), "--stage", "train_ar",
                    "--items", "2"], check=True)
    curve = json.loads((exp / "train_ar" / "wer_curve.json").read_text())
    assert [row["step"] for row in curve["rows"]] == [2, 4] and curve["items"] == 2
    assert all(row["wer"] >= 0 and row["minutes"] > 0 and row["length_ratio_median"] > 0 for row in curve["rows"])

    prompt = items[0]
    out = tmp_path / "cli.wav"
    assert main(["synthesize", "--release", str(release), "--text", "The small dog runs home.",
                 "--prompt-wav", prompt["prompt_audio"], "--prompt-text", prompt["prompt_text"],
                 "--out", str(out), "--seed", "3"]) == 0
    assert sf.info(out).frames > 0
    capsys.readouterr()


def test_valle_recipe_with_encodec_weights(tmp_path, capsys):
    """The cluster configuration (`codec=encodec_24khz`) through every stage and the release's CLI, with
    an EnCodec checkpoint in the published format made here (random weights: no network)."""
    import torch

    from ttsframe.codecs import build_codec
    from ttsframe.codecs.encodec import CHECKPOINT_NAME

    torch.manual_seed(0)
    checkpoint = tmp_path / CHECKPOINT_NAME
    torch.save(build_codec({"name": "encodec", "pretrained": False, "device": "cpu"}).model.state_dict(), checkpoint)
    recipe, _ = tiny_recipe(tmp_path)
    exp = tmp_path / "exp"
    overrides = [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}",
                 "codec=encodec_24khz", f"codec.checkpoint={checkpoint}", "codec.bandwidth=1.5",
                 "codec.device=cpu", "trainer.max_steps=2", "trainer.val_check_interval=2",
                 "trainer.limit_val_batches=1", "trainer.logger=csv", "trainer.num_workers=0",
                 "trainer.checkpoint_every_n_steps=2", "trainer.audio_samples=0", "trainer.progress_bar=false"]
    assert main(["run", str(recipe), *overrides]) == 0
    codec = json.loads((exp / "release" / "codec.json").read_text())
    assert codec["fitted"] is False and codec["config"]["checkpoint"] == str(checkpoint)
    assert (codec["describe"]["name"], codec["describe"]["n_codebooks"], codec["describe"]["frame_rate"]) == (
        "encodec", 2, 75.0)
    assert not (exp / "release" / "codec.safetensors").exists()  # weights come from the checkpoint, not the release
    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["aggregates"]["synthesis"]["items"] == 2
    item = json.loads((exp / "synth" / "test" / "items.jsonl").read_text().splitlines()[0])
    out = tmp_path / "cli.wav"
    assert main(["synthesize", "--release", str(exp / "release"), "--text", "A red boat.",
                 "--prompt-wav", item["prompt_audio"], "--prompt-text", item["prompt_text"],
                 "--out", str(out), "--device", "cpu"]) == 0
    assert sf.info(out).samplerate == 24000 and sf.info(out).frames > 0
    capsys.readouterr()
