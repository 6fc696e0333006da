"""benchmarks/fit_duration_plan.py: a trained pointer model (MELLE, DiTAR) gets a fitted duration
plan written into its checkpoint, and the synthesizer's model then carries it."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsframe.data.shards import shard_name, write_index, write_shard
from ttsframe.models.registry import family

VOCAB, M = 12, 16
ROOT = Path(__file__).resolve().parents[2]


def tool():
    spec = importlib.util.spec_from_file_location("fit_duration_plan", ROOT / "benchmarks" / "fit_duration_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pointer_model(name: str):
    torch.manual_seed(0)
    if name == "melle":
        from ttsframe.models.melle.model import Melle
        from ttsframe.models.melle.presets import melle_tiny

        net = Melle(dataclasses.replace(melle_tiny(VOCAB, n_mels=M), reduction_factor=2, phoneme_pointer=True))
    else:
        from ttsframe.models.ditar.model import DiTAR
        from ttsframe.models.ditar.presets import ditar_tiny

        net = DiTAR(dataclasses.replace(ditar_tiny(VOCAB, n_mels=M), phoneme_pointer=True))
    net.set_mel_stats(torch.full((M,), -5.0), torch.full((M,), 2.0))
    return net


def write_exp(exp: Path, name: str, net) -> None:
    """A train stage's last.ckpt and a best.ckpt, and 6 training utterances whose phonemes take 1-3 steps."""
    g = torch.Generator().manual_seed(0)
    shard = []
    for i in range(6):
        tokens = torch.randint(1, VOCAB, (5,), generator=g)
        frames = int(sum(2 * (1 + t % 3) for t in tokens.tolist()))
        mel = torch.randn(frames, M, generator=g) * 2 - 5
        shard.append({"__key__": f"u{i}", "tokens.npy": tokens.numpy().astype(np.int32),
                      "mel.npy": mel.numpy().astype(np.float16), "meta.json": {"id": f"u{i}", "speaker": "s"}})
    write_index(exp / "shards", "train", [write_shard(exp / "shards" / shard_name("train", 0), shard)], feature="mel",
                codec={"name": "mel", "dim": M}, n_codebooks=0, codebook_size=0, frame_rate=86.0, vocab_size=VOCAB)
    checkpoint = {"hyper_parameters": {"model_config": dataclasses.asdict(net.config), "family": name},
                  "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "optimizer_states": [{}]}
    stage = exp / f"train_{name}" / "checkpoints"
    stage.mkdir(parents=True)
    torch.save(checkpoint, stage / "last.ckpt")
    torch.save(checkpoint, stage / "best.ckpt")


@pytest.mark.parametrize("name", ["melle", "ditar"])
def test_a_pointer_checkpoint_gets_a_fitted_plan(tmp_path, name, capsys):
    net = pointer_model(name)
    write_exp(tmp_path / "exp", name, net)
    tool().main([str(tmp_path / "exp"), "--stage", f"train_{name}", "--out", str(tmp_path / "planned"), "--steps", "150",
                 "--batch", "4"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and all("rounded durations exact" in line for line in printed)  # best, last
    source = torch.load(tmp_path / "exp" / f"train_{name}" / "checkpoints" / "last.ckpt", weights_only=False)
    assert "duration_plan" not in source["hyper_parameters"]["model_config"] or \
        not source["hyper_parameters"]["model_config"]["duration_plan"]  # the source is kept
    checkpoints = tmp_path / "planned" / f"train_{name}" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]
    checkpoint = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["hyper_parameters"]["model_config"]["duration_plan"] is True
    assert "optimizer_states" not in checkpoint
    model = family(name).synthesizer_class().build_model(
        checkpoint["hyper_parameters"]["model_config"],
        {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}, "cpu")
    for key, value in net.state_dict().items():  # everything but the predictor is the trained model's
        assert torch.equal(model.state_dict()[key], value)
    exact = float(printed[-1].split("rounded durations exact ")[1].split(",")[0])
    assert exact > 0.5  # fitted to the aligner's tracks of the 6 rows


def test_a_model_without_a_pointer_is_refused(tmp_path):
    from ttsframe.models.melle.model import Melle
    from ttsframe.models.melle.presets import melle_tiny

    write_exp(tmp_path, "melle", Melle(melle_tiny(VOCAB, n_mels=M)))
    with pytest.raises(SystemExit, match="no phoneme pointer"):
        tool().main([str(tmp_path), "--stage", "train_melle"])
