"""The training loop on a fixed tiny batch: the CTC loss falls, runs repeat exactly, rows are logged."""

import numpy as np
import pytest
import torch

from ttsframe.tokenizers.s3_asr import S3AsrModel, get_preset
from ttsframe.tokenizers.s3_asr.train import (Example, TrainOptions, batches, codebook_use, evaluate, spec_augment,
                                              train_s3_asr, vtlp)

N_PHONES = 8


def toy_examples(n: int, seed: int) -> list[Example]:
    """Utterances of 4-7 'phones', each a fixed random 80-band spectrum held 8-14 frames, plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(0).normal(0, 1, (N_PHONES + 1, 80))
    out = []
    for _ in range(n):
        ids = [int(rng.integers(1, N_PHONES + 1))]
        while len(ids) < rng.integers(4, 8):
            ids.append(int(rng.choice([k for k in range(1, N_PHONES + 1) if k != ids[-1]])))
        mel = np.concatenate([np.repeat(prototypes[k][None], rng.integers(8, 15), axis=0) for k in ids])
        out.append(Example((mel + 0.3 * rng.standard_normal(mel.shape)).astype(np.float32), tuple(ids)))
    return out


def train_once(examples, steps=50, seed=0):
    torch.manual_seed(seed)
    model = S3AsrModel(get_preset("s3_asr_tiny", N_PHONES + 1, subsample=4))
    options = TrainOptions(steps=steps, lr=2e-3, lr_warmup_steps=5, quantizer_warmup_steps=25,
                           batch_frames=100_000, num_buckets=1, log_every=25, eval_unquantized=True, seed=seed)
    before = evaluate(model, examples, options.batch_frames)["loss"]
    rows = []
    train_s3_asr(model, examples, examples, options, log=rows.append)
    return before, rows


def test_ctc_loss_falls_on_a_fixed_batch_and_runs_repeat_exactly():
    examples = toy_examples(8, seed=1)
    assert len(list(batches(examples, 100_000, np.random.default_rng(0), num_buckets=1))) == 1  # one fixed batch
    before, rows = train_once(examples)
    assert [r["step"] for r in rows] == [25, 50] and [r["quantize"] for r in rows] == [False, True]
    assert rows[-1]["dev_loss"] < 0.5 * before, (before, rows)
    assert rows[-1]["codes_used"] > 0 and rows[-1]["perplexity"] >= 1
    assert {"dev_per", "dev_per_unquantized", "train_loss", "minutes"} <= set(rows[-1])
    _, again = train_once(examples)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "minutes"} for r in rs]  # noqa: E731
    assert strip(again) == strip(rows)


def test_length_bucketed_batches_cover_every_example_once_within_the_frame_cap():
    examples = toy_examples(40, seed=2)
    got = list(batches(examples, 300, np.random.default_rng(3)))
    assert sorted(i for b in got for i in b) == list(range(40))
    assert all(len(b) * max(len(examples[i].mel) for i in b) <= 300 for b in got)


def test_codebook_use_by_hand():
    stats = codebook_use(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), codebook_size=16)
    assert stats["codes_used"] == pytest.approx(4 / 16) and stats["perplexity"] == pytest.approx(4.0)
    assert codebook_use(torch.tensor([5] * 10), 16)["perplexity"] == pytest.approx(1.0)


def test_spec_augment_masks_bands_and_spans_inside_each_row_only():
    mel = torch.rand(2, 50, 16) + 1.0
    mel[1, 30:] = 0.0  # padding of row 1
    lengths = torch.tensor([50, 30])
    out = spec_augment(mel, lengths, np.random.default_rng(0), max_freq=4, max_time_ratio=0.2)
    again = spec_augment(mel, lengths, np.random.default_rng(0), max_freq=4, max_time_ratio=0.2)
    assert torch.equal(out, again) and not torch.equal(out, mel)  # seeded, and something is masked
    masked = out == 0
    assert torch.equal(out[~masked], mel[~masked])  # the rest is untouched
    assert (masked[0].all(0).sum() + masked[0].all(1).sum()) > 0  # whole bands or whole frames
    assert masked[1, :30].sum() < masked[1, :30].numel() and (out[1, 30:] == 0).all()


def test_vtlp_moves_a_formant_up_or_down_with_the_warp_and_keeps_flat_rows():
    n_mels = 80
    mel = torch.full((3, 5, n_mels), -1.0)
    mel[:, :, 40] = 1.0  # one peak at band 40
    mel[2] = 0.5  # a flat row stays flat
    rng = np.random.default_rng(0)
    warps = np.random.default_rng(0).uniform(0.8, 1.2, 3)
    out = vtlp(mel, rng, max_warp=0.2)
    for b in range(2):
        peak = int(out[b, 0].argmax())
        assert (peak > 40) == (warps[b] > 1) and abs(peak - 40) >= 1, (warps[b], peak)
        assert torch.equal(out[b, 0], out[b, 4])  # the same warp in every frame of a row
    torch.testing.assert_close(out[2], mel[2])
    torch.testing.assert_close(vtlp(mel, np.random.default_rng(1), max_warp=0.0), mel)
