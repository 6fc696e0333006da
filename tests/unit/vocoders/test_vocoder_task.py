"""VocoderTask: one training iteration updates generator and discriminators; the segment stream."""

import json

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from ttsframe.codecs.mel import MelConfig
from ttsframe.data.manifest import Utterance
from ttsframe.vocoders.data import SegmentBatches, VocoderData
from ttsframe.vocoders.hifigan import tiny
from ttsframe.vocoders.task import VocoderTask


def write_utterances(folder, seconds=(0.3, 0.05, 0.2), sample_rate=16000) -> list[Utterance]:
    rng = np.random.default_rng(0)
    utterances = []
    for i, s in enumerate(seconds):
        path = folder / f"u{i}.wav"
        sf.write(path, (0.2 * rng.standard_normal(int(s * sample_rate))).astype(np.float32), sample_rate)
        utterances.append(Utterance(f"u{i}", str(path), "x", "spk", s, sample_rate))
    return utterances


def test_training_step_updates_generator_and_discriminators():
    torch.manual_seed(0)
    task = VocoderTask(tiny().to_dict(), MelConfig().to_dict(), discriminator="tiny", optim={"lr": 1e-3})
    before = {k: v.clone() for k, v in task.state_dict().items()}
    assert {k.split(".")[0] for k in before} == {"generator", "mpd", "msd"}
    batches = DataLoader([0.1 * torch.randn(1, 1024)], batch_size=None)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, train_dataloaders=batches)
    assert trainer.global_step == 2  # one iteration: a D step and a G step
    after = task.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"generator", "mpd", "msd"}
    assert all(torch.isfinite(v).all() for v in after.values())
    lrs = [opt.param_groups[0]["lr"] for opt in trainer.optimizers]
    assert all(lr < 1e-3 for lr in lrs)  # decayed after the step


def test_segment_stream_is_deterministic_and_indexed(tmp_path):
    utterances = write_utterances(tmp_path)
    stream = SegmentBatches(utterances, 22050, 2048, 3, seed=5)
    first = [b for b, _ in zip(stream, range(4))]
    assert all(b.shape == (3, 2048) and b.dtype == torch.float32 for b in first)
    torch.testing.assert_close(first[2], SegmentBatches(utterances, 22050, 2048, 3, seed=5, start=2).batch(2))
    resumed = next(iter(SegmentBatches(utterances, 22050, 2048, 3, seed=5, start=3)))
    torch.testing.assert_close(resumed, first[3])
    two_workers = DataLoader(SegmentBatches(utterances, 22050, 2048, 3, seed=5), batch_size=None, num_workers=2)
    for a, b in zip(first, two_workers):
        torch.testing.assert_close(a, b)
    other_rank = SegmentBatches(utterances, 22050, 2048, 3, seed=5, rank=1).batch(0)
    assert not torch.equal(other_rank, first[0])
    # The 0.05 s utterance (1102 samples at 22.05 kHz) is zero-padded to the segment length.
    short = SegmentBatches(utterances[1:2], 22050, 2048, 1, seed=0).batch(0)[0]
    assert short[:1000].abs().sum() > 0 and short[1200:].abs().sum() == 0


def test_data_module_reads_manifests(tmp_path):
    utterances = write_utterances(tmp_path)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(u.to_json()) + "\n" for u in utterances))
    data = VocoderData(tmp_path, 22050, 256, 1024, 2, seed=0, num_val_utterances=2, max_val_seconds=0.25)
    assert len(data.val_utterances) == 2  # no dev.jsonl: train utterances
    lengths = [wav.shape[-1] for wav in data.val_dataloader()]
    assert lengths == [5512 // 256 * 256, 1102 // 256 * 256]
    assert next(iter(data.train_dataloader())).shape == (2, 1024)
    with pytest.raises(Exception, match="not a multiple of the hop length"):
        VocoderData(tmp_path, 22050, 256, 1000, 2, seed=0)
