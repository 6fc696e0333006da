"""The whole cosyvoice recipe on a tiny slice of the built-in corpus: prepare -> train_tokenizer ->
tokenize (mel + speech tokens + speaker embeddings) -> train_lm -> train_flow -> train_vocoder
(Griffin-Lim) -> synthesize -> evaluate -> release -> the `synthesize` command, streamed too;
a killed train_tokenizer stage that runs again gives the same shards, and a tokenizer named by
`tokenizer.checkpoint` is used as it is."""

import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch
from recipe_files import with_synthesis_options

from ttsframe.__main__ import main
from ttsframe.tokenizers.s3_asr import train as s3_train

pytestmark = pytest.mark.integration
SAMPLING = {"max_items": 2, "max_token_text_ratio": 1.5, "min_token_text_ratio": 1.0, "flow_steps": 2}


def tiny_recipe(tmp_path):
    return with_synthesis_options("cosyvoice", tmp_path, SAMPLING)


def overrides(tmp_path, exp):
    return [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}", "model=cosyvoice_tiny",
            "tokenizer.steps=12", "tokenizer.quantizer_warmup_steps=4", "tokenizer.log_every=6",
            "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
            "trainer.logger=csv", "trainer.num_workers=0", "trainer.checkpoint_every_n_steps=2",
            "trainer.progress_bar=false", "vocoder=griffin_lim", "vocoder.griffin_lim_iters=4",
            "vocoder.num_val_utterances=1", "eval.max_items=2"]


def shard_members(shard_dir):
    out = {}
    for tar in sorted(shard_dir.glob("*.tar")):
        with tarfile.open(tar) as t:
            out[tar.name] = sorted((m.name, t.extractfile(m).read()) for m in t.getmembers())
    return out


def test_cosyvoice_recipe_end_to_end(tmp_path, capsys, monkeypatch):
    recipe, exp = tiny_recipe(tmp_path), tmp_path / "exp"
    threads = torch.get_num_threads()  # the tokenizer's training below is bit-exact for this count only
    assert main(["run", str(recipe), *overrides(tmp_path, exp)]) == 0
    meta = json.loads((exp / "train_tokenizer" / "tokenizer.json").read_text())
    assert meta["name"] == "s3_asr" and meta["history"][-1]["step"] == 12

    index = json.loads((exp / "shards" / "train.index.json").read_text())
    assert index["speech_frame_rate"] == 25.0 and index["speech_vocab_size"] == 625 and index["spk_dim"] == 256
    with tarfile.open(exp / "shards" / index["shards"][0]["file"]) as t:
        names = t.getnames()
        speech = np.load(io.BytesIO(t.extractfile(next(n for n in names if n.endswith("speech.npy"))).read()))
        spk = np.load(io.BytesIO(t.extractfile(next(n for n in names if n.endswith("spk.npy"))).read()))
    assert speech.dtype == np.int16 and speech.ndim == 1 and 0 <= speech.min() and speech.max() < 625
    assert spk.shape == (256,) and abs(float(np.linalg.norm(spk.astype(np.float32))) - 1) < 1e-2

    for stage in ("train_lm", "train_flow"):
        assert (exp / stage / "checkpoints" / "last.ckpt").is_file()
    items = [json.loads(line) for line in (exp / "synth" / "test" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 2 and all(sf.info(i["synth_audio"]).frames > 0 for i in items)
    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["family"] == "cosyvoice" and metrics["aggregates"]["resynthesis"]["items"] == 2

    release = exp / "release"
    assert {"lm.safetensors", "flow.safetensors", "tokenizer", "speaker.json", "README.md"} <= {
        p.name for p in release.iterdir()}
    for stream in (False, True):
        out = tmp_path / f"cli_{stream}.wav"
        args = ["synthesize", "--release", str(release), "--text", "The small dog runs home.",
                "--prompt-wav", items[0]["prompt_audio"], "--prompt-text", items[0]["prompt_text"],
                "--out", str(out), "--seed", "3", "--flow-steps", "2", "--device", "cpu"]
        assert main(args + (["--stream"] if stream else [])) == 0
        assert sf.info(out).frames > 0 and sf.info(out).samplerate == 22050
    assert "first chunk after" in capsys.readouterr().out

    # A train_tokenizer stage killed mid-training runs again from the start: the same tokenizer, the same
    # shards (training is deterministic for a seed and a torch thread count; the stages above may change it).
    torch.set_num_threads(threads)
    again = tmp_path / "again"
    calls = {"n": 0}
    original = s3_train._log_row

    def killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(s3_train, "_log_row", killed)
    assert main(["run", str(recipe), "--stop-stage", "2", *overrides(tmp_path, again)]) != 0  # interrupted
    assert not (again / "train_tokenizer" / "tokenizer.json").is_file()
    assert main(["run", str(recipe), "--stop-stage", "2", *overrides(tmp_path, again)]) == 0
    assert json.loads((again / "train_tokenizer" / "tokenizer.json").read_text())["sha256"] == meta["sha256"]
    assert shard_members(again / "shards") == shard_members(exp / "shards")

    # A trained tokenizer named by tokenizer.checkpoint is used as it is: nothing trained, the same shards.
    capsys.readouterr()
    reused = tmp_path / "reused"
    assert main(["run", str(recipe), "--stop-stage", "2", *overrides(tmp_path, reused),
                 f"tokenizer.checkpoint={exp / 'train_tokenizer'}"]) == 0
    assert "is used as it is; nothing to train" in capsys.readouterr().out
    assert not (reused / "train_tokenizer" / "tokenizer.safetensors").exists()
    assert shard_members(reused / "shards") == shard_members(exp / "shards")
