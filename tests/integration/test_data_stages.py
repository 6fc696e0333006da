"""Stages 0 and 1 of the valle recipe on a tiny slice of the built-in corpus, through the CLI."""

import io
import json
import tarfile

import numpy as np
import pytest

from ttsframe.__main__ import main
from ttsframe.data.manifest import read_manifest
from ttsframe.data.shards import read_index
from ttsframe.pipeline import tokenize
from ttsframe.text import PhonemizerFrontend
from ttsframe.utils.atomic import read_jsonl

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def corpus_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("builtin_cache")


def overrides(exp_dir, cache):
    return [f"exp_dir={exp_dir}", "data=builtin_tiny", f"data.cache_dir={cache}",
            "codec.n_codebooks=2", "codec.codebook_size=32"]


def run(*args) -> int:
    return main(["run", "valle", *map(str, args)])


def shard_contents(shard_dir):
    """{shard file: [(key, codes bytes)]} for every tar in shard_dir."""
    contents = {}
    for tar in sorted(shard_dir.glob("*.tar")):
        with tarfile.open(tar) as t:
            contents[tar.name] = sorted((m.name, t.extractfile(m).read()) for m in t.getmembers())
    return contents


def test_prepare_and_tokenize(tmp_path, corpus_cache, monkeypatch, capsys):
    monkeypatch.setattr(tokenize, "SHARD_SIZE", 8)
    assert run("--stage", 0, "--stop-stage", 1, *overrides(tmp_path, corpus_cache)) == 0

    summary = json.loads((tmp_path / "data" / "summary.json").read_text())
    rejected = read_jsonl(tmp_path / "data" / "rejected.jsonl")
    manifests = {s: read_manifest(tmp_path / "data" / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert summary["kept"] + summary["rejected"] == summary["found"]
    assert sum(len(m) for m in manifests.values()) + len(rejected) == summary["found"]
    assert manifests["train"] and manifests["dev"] and manifests["test"]
    train_speakers = {u.speaker for u in manifests["train"]}
    assert not train_speakers & {u.speaker for u in manifests["test"]}, "test voices must be unseen"

    vocab = json.loads((tmp_path / "shards" / "vocab.json").read_text())
    for split, utts in manifests.items():
        index = read_index(tmp_path / "shards", split)
        assert index["samples"] == len(utts)
        assert index["n_codebooks"] == 2 and index["feature"] == "codes"
        seen = []
        for shard in index["shards"]:
            with tarfile.open(tmp_path / "shards" / shard["file"]) as t:
                names = t.getnames()
                metas = [json.load(t.extractfile(n)) for n in names if n.endswith("meta.json")]
                codes = [np.load(io.BytesIO(t.extractfile(n).read())) for n in names if n.endswith("codes.npy")]
            assert shard["samples"] == len(metas) and shard["frames"] == sum(c.shape[1] for c in codes)
            for c in codes:
                assert c.dtype == np.int16 and c.shape[0] == 2 and 0 <= c.min() and c.max() < 32
            seen += [m["id"] for m in metas]
        assert sorted(seen) == sorted(u.id for u in utts), f"{split}: duplicates or holes"
    assert (tmp_path / "shards" / "config.yaml").is_file() and (tmp_path / "data" / "config.yaml").is_file()
    # The vocabulary holds the frontend's whole inventory; coverage.json counts it in train.
    frontend = PhonemizerFrontend()
    inventory = frontend.inventory()
    assert inventory.symbols <= set(vocab["symbols"])
    train_seen = {s for seq in frontend.symbols([u.text for u in manifests["train"]]) for s in seq}
    found = json.loads((tmp_path / "shards" / "coverage.json").read_text())
    assert set(found["counts"]) == set(inventory.units) and found["min_count"] == 20
    assert {u for u, c in found["counts"].items() if c > 0} == train_seen & set(inventory.units)
    assert vocab["untrained"] == found["untrained"] == sorted(inventory.symbols - train_seen)
    assert "text coverage:" in capsys.readouterr().out

    # A re-run does nothing; a killed tokenize resumes to the same shards as a clean run.
    before = shard_contents(tmp_path / "shards")
    assert run("--stage", 0, "--stop-stage", 1, *overrides(tmp_path, corpus_cache)) == 0
    assert shard_contents(tmp_path / "shards") == before

    resumed = tmp_path / "resumed"
    assert run("--stage", 0, "--stop-stage", 0, *overrides(resumed, corpus_cache)) == 0
    real_encode, calls = tokenize.encode_shard, []

    def dies_on_third_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(tokenize, "encode_shard", dies_on_third_shard)
    assert run("--stage", 1, "--stop-stage", 1, *overrides(resumed, corpus_cache)) == 130
    monkeypatch.setattr(tokenize, "encode_shard", real_encode)
    assert run("--stage", 1, "--stop-stage", 1, *overrides(resumed, corpus_cache)) == 0
    assert shard_contents(resumed / "shards") == before
    assert not list((resumed / "shards").glob(".*tmp")), "temporary files left behind"


def test_bad_input_gives_one_line_errors(tmp_path, capsys):
    assert run(f"exp_dir={tmp_path}", "data=ljspeech", f"data.root={tmp_path / 'nope'}") == 2
    assert "data.root" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run(f"exp_dir={tmp_path}", "data=generic", f"data.root={tmp_path / 'empty'}") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert run(f"exp_dir={tmp_path}", "codec.n_codebookz=2") == 2
    assert "n_codebooks" in capsys.readouterr().err
