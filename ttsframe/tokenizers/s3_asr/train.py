"""Trains an S3AsrModel with CTC in plain PyTorch (the pipeline stage around it lives elsewhere).

    examples = [Example(mel (T, 80) float32, targets [ids]) ...]   # features.log_mel, ctc.PhoneTable
    history = train_s3_asr(model, train_examples, dev_examples, TrainOptions())

Batches hold utterances of similar length up to `batch_frames` padded mel frames (B x longest).
AdamW with a linear lr warm-up and cosine decay. The quantiser warm-up: the first
`quantizer_warmup_steps` steps run with quantize=False (bounded continuous codes), the rest with
FSQ rounding. Measured on the built-in corpus (benchmarks/s3_tokenizer_probe.py, tiny preset, 550
steps, one core): dev phone error rate 0.100 with 300 warm-up steps, 0.113 with FSQ from step 0.
What decides whether FSQ trains at all is the norm after the conv subsampling (model.py):
without it every frame rounds to one code from the first step and CTC sits on its plateau.
Every `log_every` steps (and at the end) a row goes to `log`: the mean train CTC loss since the
last row, the quantised dev phone error rate and the dev codebook use.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ttsframe.codecs.mel import hz_to_mel, mel_to_hz
from ttsframe.data.batching import DynamicBucketer, frames_length
from ttsframe.tokenizers.s3_asr.ctc import ctc_loss, greedy_decode, phone_error_rate
from ttsframe.tokenizers.s3_asr.model import S3AsrModel
from ttsframe.training.optim import lr_lambda, param_groups


@dataclass(frozen=True)
class Example:
    mel: np.ndarray  # (T, n_mels) float32, features.LogMel
    targets: tuple[int, ...]  # phone ids (ctc.PhoneTable), no blanks, non-empty


@dataclass
class TrainOptions:
    steps: int = 550  # ~4 minutes of the tiny preset on one CPU core (built-in corpus)
    lr: float = 2e-3
    weight_decay: float = 0.01
    lr_warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine floor, as a share of lr
    quantizer_warmup_steps: int = 300  # the first this many steps run with quantize=False
    batch_frames: int = 6000  # padded mel frames per batch (B x longest)
    num_buckets: int = 10  # length buckets (each of about the same total frames)
    grad_clip: float = 1.0
    log_every: int = 100
    eval_unquantized: bool = False  # also log the dev error rate without rounding
    max_minutes: float | None = None  # stop at the first log step past this wall time
    spec_augment: bool = False  # SpecAugment masks on the training batches (`spec_augment`)
    vtlp: float = 0.0  # largest frequency warp of `vtlp` (0.1: factors in [0.9, 1.1]); 0: off
    seed: int = 0


def batches(examples: Sequence[Example], batch_frames: int, rng: np.random.Generator | None,
            num_buckets: int = 10) -> Iterator[list[int]]:
    """One pass: lists of example indices, length-bucketed, <= batch_frames padded frames each
    (a longer utterance alone). rng None: in length order (evaluation); else shuffled."""
    order = np.argsort([len(e.mel) for e in examples], kind="stable") if rng is None else rng.permutation(len(examples))
    samples = ({"frames": len(examples[i].mel), "index": int(i)} for i in order)
    bucketer = DynamicBucketer(max_frames=batch_frames, num_buckets=num_buckets, length_fn=frames_length)
    for batch in bucketer(samples):
        yield [s["index"] for s in batch]


def collate(examples: Sequence[Example], indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, ...]]]:
    """-> mel (B, T_max, n_mels) zero-padded, lengths (B,), targets (B lists)."""
    rows = [examples[i] for i in indices]
    lengths = torch.tensor([len(e.mel) for e in rows])
    mel = torch.zeros(len(rows), int(lengths.max()), rows[0].mel.shape[1])
    for b, e in enumerate(rows):
        mel[b, : len(e.mel)] = torch.from_numpy(np.asarray(e.mel, dtype=np.float32))
    return mel, lengths, [e.targets for e in rows]


def spec_augment(mel: torch.Tensor, lengths: torch.Tensor, rng: np.random.Generator, freq_masks: int = 2,
                 max_freq: int = 10, time_masks: int = 2, max_time_ratio: float = 0.05) -> torch.Tensor:
    """SpecAugment (Park et al., 2019) without time warping: per row, ``freq_masks`` bands of up to
    ``max_freq`` bins and ``time_masks`` spans of up to ``max_time_ratio`` of its frames set to 0
    (the features' mean). mel (B, T, n_mels) -> a masked copy."""
    out = mel.clone()
    n_mels = mel.shape[2]
    for b, n in enumerate(lengths.tolist()):
        for _ in range(freq_masks):
            width = int(rng.integers(0, max_freq + 1))
            start = int(rng.integers(0, n_mels - width + 1))
            out[b, :n, start : start + width] = 0.0
        for _ in range(time_masks):
            width = int(rng.integers(0, int(max_time_ratio * n) + 1))
            start = int(rng.integers(0, n - width + 1))
            out[b, start : start + width] = 0.0
    return out


def vtlp(mel: torch.Tensor, rng: np.random.Generator, max_warp: float = 0.1, fmax: float = 8000.0) -> torch.Tensor:
    """Vocal tract length perturbation (Jaitly and Hinton, 2013) on log-mel rows: row b's spectrum is
    stretched in frequency by a factor a_b ~ U(1 - max_warp, 1 + max_warp), S'(f) = S(f / a_b), so
    formants and harmonics move as with a longer or shorter vocal tract. Band k (Slaney scale from 0
    to ``fmax``, as `features`) reads the input at its centre frequency / a_b, interpolated between
    the neighbouring bands and clamped at the ends. mel (B, T, n_mels) -> a warped copy."""
    n_mels = mel.shape[2]
    scale = np.linspace(hz_to_mel(0.0), hz_to_mel(fmax), n_mels + 2)[1:-1]  # band centres, mel
    centres = mel_to_hz(scale)  # (n_mels,) Hz
    out = torch.empty_like(mel)
    for b in range(mel.shape[0]):
        warp = rng.uniform(1 - max_warp, 1 + max_warp)
        position = torch.from_numpy(np.interp(hz_to_mel(centres / warp), scale, np.arange(n_mels)))  # (n_mels,)
        lo = position.floor().long().clamp(max=n_mels - 1)
        hi = (lo + 1).clamp(max=n_mels - 1)
        weight = (position - lo).to(mel.dtype)
        out[b] = (1 - weight) * mel[b][:, lo] + weight * mel[b][:, hi]
    return out


def codebook_use(indices: torch.Tensor, codebook_size: int) -> dict:
    """Valid token ids (N,) -> share of the implicit codebook used and the code perplexity
    (exp of the entropy of the code distribution: the number of equally used codes it equals)."""
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).double()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"codes_used": float((counts > 0).sum() / codebook_size), "perplexity": float(entropy.exp())}


@torch.no_grad()
def evaluate(model: S3AsrModel, examples: Sequence[Example], batch_frames: int, quantize: bool = True) -> dict:
    """Dev phone error rate (greedy CTC), CTC loss and codebook use."""
    was_training = model.training
    model.eval()
    refs, hyps, tokens, losses = [], [], [], []
    for indices in batches(examples, batch_frames, rng=None):
        mel, lengths, targets = collate(examples, indices)
        out = model(mel, lengths, quantize=quantize)
        losses.append(float(ctc_loss(out["logits"], out["lengths"], targets)) * len(indices))
        refs += targets
        hyps += greedy_decode(out["logits"], out["lengths"])
        tokens += [row[:n] for row, n in zip(out["indices"], out["lengths"].tolist())]
    model.train(was_training)
    return {"per": phone_error_rate(refs, hyps), "loss": sum(losses) / len(examples),
            **codebook_use(torch.cat(tokens), model.fsq.codebook_size)}


def train_s3_asr(
    model: S3AsrModel,
    train: Sequence[Example],
    dev: Sequence[Example],
    options: TrainOptions,
    log: Callable[[dict], None] = lambda row: print(format_row(row), flush=True),
) -> list[dict]:
    """Trains `model` in place; returns the logged rows (also passed to `log` as they come)."""
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    optimizer = torch.optim.AdamW(param_groups(model, options.weight_decay), lr=options.lr, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda("cosine", options.lr_warmup_steps, options.steps, options.min_lr_ratio))
    stream = itertools.chain.from_iterable(batches(train, options.batch_frames, rng, options.num_buckets) for _ in itertools.count())
    start, history, window = time.perf_counter(), [], []
    model.train()
    for step, indices in zip(range(1, options.steps + 1), stream):
        quantize = step > options.quantizer_warmup_steps
        mel, lengths, targets = collate(train, indices)
        if options.vtlp > 0:
            mel = vtlp(mel, rng, options.vtlp)
        if options.spec_augment:
            mel = spec_augment(mel, lengths, rng)
        out = model(mel, lengths, quantize=quantize)
        loss = ctc_loss(out["logits"], out["lengths"], targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
        optimizer.step()
        schedule.step()
        window.append(loss.item())
        if step % options.log_every and step != options.steps:
            continue
        history.append(_log_row(model, dev, options, step, quantize, window, start))
        log(history[-1])
        window = []
        if options.max_minutes is not None and history[-1]["minutes"] >= options.max_minutes:
            break
    model.eval()
    return history


def _log_row(model, dev, options: TrainOptions, step: int, quantize: bool, window: list[float], start: float) -> dict:
    quantized = evaluate(model, dev, options.batch_frames, quantize=True)
    row = {"step": step, "quantize": quantize, "train_loss": sum(window) / len(window),
           "dev_loss": quantized["loss"], "dev_per": quantized["per"],
           "codes_used": quantized["codes_used"], "perplexity": quantized["perplexity"]}
    if options.eval_unquantized:
        row["dev_per_unquantized"] = evaluate(model, dev, options.batch_frames, quantize=False)["per"]
    row["minutes"] = (time.perf_counter() - start) / 60
    return row


def format_row(row: dict) -> str:
    """One log line from a history row."""
    text = (f"step {row['step']:5d} {row['minutes']:5.1f} min  {'fsq ' if row['quantize'] else 'warm'}  "
            f"loss {row['train_loss']:.3f}  dev loss {row['dev_loss']:.3f}  dev PER {row['dev_per']:.3f}")
    if "dev_per_unquantized" in row:
        text += f" (unquantised {row['dev_per_unquantized']:.3f})"
    return text + f"  codes used {100 * row['codes_used']:.1f}%  perplexity {row['perplexity']:.1f}"

