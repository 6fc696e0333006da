"""Give a trained phoneme-pointer model (MELLE or DiTAR) a duration plan without retraining it.

    python benchmarks/fit_duration_plan.py exp/melle --stage train_melle --steps 600
    python benchmarks/fit_duration_plan.py exp/ditar --stage train_ditar --out exp/ditar_plan

The duration predictor (`ttsframe.modules.duration_plan`) reads the text alone and never feeds the
LM, so it can be fitted after the fact: for every checkpoint of the stage (last.ckpt, best.ckpt,
the `step<N>.ckpt` snapshots), this trains one on the tracks that checkpoint's own aligner gives the
training shards (the model frozen), then writes the checkpoint back with `duration_plan: true` and
the predictor's weights (a predictor it had is replaced), so the synthesize stage, `wer_curve.py` and
a release follow the plan (`follow_plan=false` in the sampling options gives the advance head back).
With --out, the exp dir is copied first and the copy is changed; without it, in place. The
optimizer state is dropped (it never saw the predictor): resume training from a checkpoint from before.

Prints per checkpoint the fit: the loss, the share of phonemes whose rounded duration is exact, and
the mean relative error of each row's total.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from ttsframe.data.collate import collate
from ttsframe.data.dataset import read_part, to_item
from ttsframe.data.shards import read_index, shard_urls
from ttsframe.models.registry import family as family_spec
from ttsframe.modules.duration_plan import DurationPredictor, duration_loss, steps_per_phoneme
from ttsframe.modules.packing import lengths_to_mask


def aligned_counts(model, batch) -> torch.Tensor:
    """(B, L) steps per phoneme by the model's aligner on the batch's mel (MELLE groups, DiTAR patches)."""
    if hasattr(model, "to_frames"):  # DiTAR: patches of its frame representation
        frames, lengths = model.to_frames(batch.mel, batch.frame_lengths)
        size = model.config.patch_size
    else:  # MELLE: groups of reduction_factor normalised mel frames
        mask = lengths_to_mask(batch.frame_lengths, batch.mel.shape[1])[..., None]
        frames, lengths = model.normalize(batch.mel.float()).masked_fill(~mask, 0.0), batch.frame_lengths
        size = model.config.reduction_factor
    steps = torch.div(lengths.long() + size - 1, size, rounding_mode="floor")  # (B,)
    pointers = model.align(batch.tokens, batch.token_lengths, frames, lengths, int(steps.max()))[1]  # (B, N)
    return steps_per_phoneme(pointers, steps, batch.tokens.shape[1])


def training_items(shard_dir: Path, limit: int) -> list[dict]:
    """The first `limit` utterances of the train shards, in index order."""
    index, items = read_index(shard_dir, "train"), []
    for url, shard in zip(shard_urls(shard_dir, index), index["shards"]):
        items += [to_item(raw) for raw in read_part(url, 0, shard["samples"])]
        if len(items) >= limit:
            break
    return items[:limit]


def fit(predictor: DurationPredictor, batches: list, counts: list[torch.Tensor], steps: int, lr: float) -> float:
    """Adam on the duration loss over the batches in turn; returns the last loss."""
    optimizer = torch.optim.AdamW(predictor.parameters(), lr=lr)
    predictor.train()
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        batch, target = batches[step % len(batches)], counts[step % len(batches)]
        loss = duration_loss(predictor(batch.tokens, batch.token_lengths), target, batch.token_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predictor.eval()
    return loss.item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp", type=Path)
    parser.add_argument("--stage", required=True, help="the train stage whose checkpoints get the plan")
    parser.add_argument("--out", type=Path, default=None, help="copy the exp dir here first")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--utterances", type=int, default=2000, help="training utterances read")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    exp = args.exp
    if args.out is not None:
        shutil.copytree(exp, args.out, symlinks=True)
        exp = args.out
    paths = sorted((exp / args.stage / "checkpoints").glob("*.ckpt"))
    if not paths:
        raise SystemExit(f"{exp / args.stage / 'checkpoints'} has no checkpoints: train the stage first")
    items = training_items(exp / "shards", args.utterances)
    batches = [collate(items[i:i + args.batch]) for i in range(0, len(items), args.batch)]
    for path in paths:
        fit_checkpoint(path, batches, args.steps, args.lr)


def fit_checkpoint(path: Path, batches: list, steps: int, lr: float) -> None:
    """Fits a duration predictor to the aligner of the checkpoint at `path` and writes it in (atomically)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    config = {**hparams["model_config"], "duration_plan": True}
    if not config.get("phoneme_pointer"):
        raise SystemExit(f"{path}: the model has no phoneme pointer (model.phoneme_pointer=true), so nothing to plan")
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()
             if k.startswith("model.") and not k.startswith("model.duration_predictor.")}
    fresh = DurationPredictor(config["vocab_size"]).state_dict()
    model = family_spec(hparams["family"]).synthesizer_class().build_model(
        config, {**state, **{f"duration_predictor.{k}": v for k, v in fresh.items()}}, "cpu")
    with torch.no_grad():
        counts = [aligned_counts(model, batch) for batch in batches]
    torch.manual_seed(0)
    loss = fit(model.duration_predictor, batches, counts, steps, lr)
    with torch.no_grad():
        exact = total = real = rows = 0.0
        for batch, target in zip(batches, counts):
            predicted = model.duration_predictor(batch.tokens, batch.token_lengths).expm1()
            mask = lengths_to_mask(batch.token_lengths, target.shape[1])
            exact += float(((predicted.round() == target) & mask).sum())
            real += float(mask.sum())
            total += float(((predicted * mask).sum(1) / target.sum(1).clamp(min=1) - 1).abs().sum())
            rows += len(batch)
    hparams["model_config"] = config
    checkpoint["state_dict"] = {**{k: v for k, v in checkpoint["state_dict"].items()
                                   if not k.startswith("model.duration_predictor.")},
                                **{f"model.duration_predictor.{k}": v
                                   for k, v in model.duration_predictor.state_dict().items()}}
    checkpoint.pop("optimizer_states", None)
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)
    print(f"{path}: {int(rows)} utterances, {steps} steps: loss {loss:.4f}, rounded durations exact "
          f"{exact / real:.3f}, row totals off by {total / rows:.3f} (mean relative); duration_plan: true")


if __name__ == "__main__":
    main()
