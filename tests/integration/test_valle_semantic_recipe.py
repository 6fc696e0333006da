"""The valle_semantic recipe on a tiny slice of the built-in corpus: prepare -> train_tokenizer ->
tokenize (semantic codec fitted on the tokenizer) -> train_ar -> train_nar -> synthesize -> evaluate
-> release, and the release synthesizes without the tokenizer folder."""

import json

import numpy as np
import pytest
import soundfile as sf
import yaml

from ttsframe.__main__ import main
from ttsframe.config.loading import RECIPE_DIR
from ttsframe.data.audio import load_audio
from ttsframe.inference import SynthesisItem
from ttsframe.release import load_release

pytestmark = pytest.mark.integration


def test_valle_semantic_recipe_end_to_end(tmp_path):
    recipe = yaml.safe_load((RECIPE_DIR / "valle_semantic" / "recipe.yaml").read_text())
    for stage in recipe["stages"]:
        if stage["kind"] == "synthesize":
            stage["options"] = {**stage.get("options", {}), "max_items": 2, "max_frames_per_token": 3.0,
                                "max_frames_base": 10}
    path, exp = tmp_path / "recipe.yaml", tmp_path / "exp"
    path.write_text("# test recipe\n" + yaml.safe_dump(recipe))
    overrides = [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}",
                 "tokenizer.steps=12", "tokenizer.quantizer_warmup_steps=4", "tokenizer.log_every=6",
                 "codec.n_codebooks=3", "codec.codebook_size=32", "codec.vocoder=griffin_lim",
                 "codec.griffin_lim_iters=4", "trainer.max_steps=4", "trainer.val_check_interval=2",
                 "trainer.limit_val_batches=1", "trainer.logger=csv", "trainer.num_workers=0",
                 "trainer.checkpoint_every_n_steps=2", "trainer.progress_bar=false", "eval.max_items=2"]
    assert main(["run", str(path), *overrides]) == 0

    index = json.loads((exp / "shards" / "train.index.json").read_text())
    assert index["n_codebooks"] == 3 and index["codebook_size"] == 625  # codebook 1: the tokenizer's codes
    assert index["codec"]["tokenizer"]["sha256"] and index["codec"]["name"] == "semantic"
    fit = json.loads((exp / ".done" / "stage02_tokenize.json").read_text())
    assert fit["summary"]["train"]["samples"] > 0
    items = [json.loads(line) for line in (exp / "synth" / "test" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 2 and all(np.isfinite(sf.read(i["synth_audio"])[0]).all() for i in items)
    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["aggregates"]["resynthesis"]["items"] == 2

    release = exp / "release"
    assert (release / "codec.safetensors").is_file()
    (exp / "train_tokenizer" / "tokenizer.safetensors").unlink()  # the release carries the tokenizer
    tts = load_release(release, device="cpu")
    prompt = load_audio(items[0]["prompt_audio"], tts.sample_rate)[0]
    wav = tts.synthesize([SynthesisItem("The small dog runs home.", prompt, tts.sample_rate,
                                        items[0]["prompt_text"])])[0]
    assert len(wav) > 0 and np.isfinite(wav).all()
