"""How intelligible is a CosyVoice flow decoder after a given training budget? Trains a flow
(plain loop, no Lightning) on a cosyvoice recipe's shards and scores its resynthesis of test
utterances (their own speech tokens and speaker embedding -> flow -> universal HiFi-GAN ->
the bundled Whisper tiny.en) against the same recordings' mel vocoded directly.

    python benchmarks/cosyvoice_flow_probe.py exp/cosyvoice --steps 1500
    python benchmarks/cosyvoice_flow_probe.py exp/cosyvoice --steps 800 --set d_model=192 prior_weight=1

Prints, per system: WER over --items test utterances, and the mel L1 to the recording (log units,
over the shorter length): `vocoded` (the recording's mel: the vocoder + ASR ceiling), `mu` (the
flow's token conditioning, denormalised: a regression decoder, meaningful with prior_weight > 0)
and `flow NFE=k` (k Euler steps, CFG 0.7).

`--phone-asr DIR` (a trained s3_asr tokenizer's folder, e.g. exp/cosyvoice/train_tokenizer) adds
a second recogniser that shares no weights with Whisper: the phone error rate of that
tokenizer's CTC head (quantised path) on every system's audio. Use it to score a flow trained on
`tokenizer=whisper_kmeans` tokens, whose WER with tiny.en flatters them.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path

import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.codecs.mel_codec import Config as MelCodecConfig
from ttsframe.codecs.mel_codec import MelCodec
from ttsframe.data.audio import resample
from ttsframe.data.dataset import ShardStream
from ttsframe.data.manifest import read_manifest
from ttsframe.eval.asr import build_asr
from ttsframe.eval.wer import error_rates
from ttsframe.models.cosyvoice.flow import CosyVoiceFlow, FlowConfig, regulate_length
from ttsframe.models.cosyvoice.flow_loss import flow_loss
from ttsframe.models.cosyvoice.flow_masks import MaskChoice
from ttsframe.models.cosyvoice.task_flow import flow_model_config
from ttsframe.modules.packing import pad_rows
from ttsframe.text import Vocabulary
from ttsframe.tokenizers.s3_asr.ctc import PhoneTable, greedy_decode, phone_error_rate, phones_only
from ttsframe.tokenizers.s3_asr.io import META, load_tokenizer
from ttsframe.training.mel_stats import mel_statistics
from ttsframe.training.optim import build_optimizer
from ttsframe.vocoders.bundle import default_vocoder, vocode_mels


def load_split(shard_dir: Path, split: str, limit: int | None = None) -> list[dict]:
    items = iter(ShardStream(shard_dir, split, rank=0, world_size=1))
    return list(itertools.islice(items, limit))


def batches(items: list[dict], max_frames: int, seed: int):
    """Endless length-sorted buckets of about max_frames mel frames, in a seeded random order."""
    g = torch.Generator().manual_seed(seed)
    order = sorted(range(len(items)), key=lambda i: items[i]["frames"])
    groups, group, frames = [], [], 0
    for i in order:
        if group and (len(group) + 1) * items[i]["frames"] > max_frames:
            groups.append(group)
            group = []
        group.append(i)
    groups.append(group)
    while True:
        for k in torch.randperm(len(groups), generator=g).tolist():
            yield [items[i] for i in groups[k]]


def to_tensors(rows: list[dict]) -> dict:
    speech, speech_lengths = pad_rows([torch.as_tensor(r["speech"]).long() for r in rows], 0)
    mel, mel_lengths = pad_rows([torch.as_tensor(r["mel"]).float() for r in rows], 0.0)
    spk = torch.stack([torch.as_tensor(r["spk"]).float() for r in rows])
    return {"speech": speech, "speech_lengths": speech_lengths, "mel": mel, "mel_lengths": mel_lengths, "spk": spk}


def train(flow: CosyVoiceFlow, items: list[dict], steps: int, max_frames: int, optim: dict, seed: int) -> float:
    mean, std, _ = mel_statistics(torch.as_tensor(r["mel"]) for r in items[:1000])
    flow.set_mel_stats(mean, std)
    opt = build_optimizer(flow, optim, steps)
    optimizer, scheduler = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    g = torch.Generator().manual_seed(seed)
    flow.train()
    start = time.perf_counter()
    for step, rows in zip(range(steps), batches(items, max_frames, seed)):
        x = to_tensors(rows)
        losses = flow_loss(flow(x["speech"], x["speech_lengths"], x["mel"], x["mel_lengths"], x["spk"],
                                generator=g), flow.config.prior_weight)
        optimizer.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}: cfm {losses['cfm'].item():.3f} prior {losses['prior'].item():.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return time.perf_counter() - start


@torch.no_grad()
def regression_mels(flow: CosyVoiceFlow, x: dict) -> list[torch.Tensor]:
    """mu of each row, denormalised: (T_i, M) raw log-mel at the recording's frame count."""
    full = MaskChoice("full", None)
    h = flow.encode(x["speech"], x["speech_lengths"], full, x["spk"])
    frames, _ = regulate_length(h, x["speech_lengths"], x["mel_lengths"], x["mel"].shape[1])
    mu = flow.denormalize(flow.regress(frames, x["mel_lengths"], x["spk"]))
    return [mu[i, :n] for i, n in enumerate(x["mel_lengths"].tolist())]


def mel_l1(outputs: list[torch.Tensor], references: list[torch.Tensor]) -> float:
    total = frames = 0.0
    for out, ref in zip(outputs, references):
        n = min(len(out), len(ref))
        total += (out[:n] - ref[:n]).abs().mean(-1).sum().item()
        frames += n
    return total / max(frames, 1)


class PhoneRecogniser:
    """An s3_asr tokenizer's CTC head as a phone recogniser: wavs -> phone error rate."""

    def __init__(self, folder: Path):
        self.tokenizer = load_tokenizer(folder)
        self.table = PhoneTable(tuple(json.loads((folder / META).read_text())["phones"]))

    @torch.inference_mode()
    def error_rate(self, wavs: list, sample_rate: int, symbols: list[list[str]]) -> float:
        refs = [[p for p in phones_only(s) if p in self.table.phones] for s in symbols]
        hyps = []
        for wav in wavs:
            audio = torch.as_tensor(resample(wav, sample_rate, self.tokenizer.sample_rate)).float()[None]
            mel = self.tokenizer.features(audio)  # (1, T, n_mels)
            out = self.tokenizer.model(mel)
            hyps.append(self.table.decode(greedy_decode(out["logits"], out["lengths"])[0]))
        return phone_error_rate(refs, hyps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp", type=Path, help="a cosyvoice recipe's exp folder (stages 0-2 done)")
    p.add_argument("--preset", default="cosyvoice_cpu")
    p.add_argument("--set", nargs="*", default=[], help="FlowConfig fields, key=value")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--max-frames", type=int, default=6000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--nfe", default="10", help="comma-separated Euler step counts to score")
    p.add_argument("--cfg", type=float, default=0.7)
    p.add_argument("--temperature", default="1.0", help="comma-separated noise temperatures to score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", help="comma-separated splits whose first --items utterances are scored")
    p.add_argument("--save", type=Path, help="write the trained flow's state_dict here")
    p.add_argument("--load", type=Path, help="score this state_dict (or a train_flow checkpoint) instead of training")
    p.add_argument("--phone-asr", type=Path, help="an s3_asr tokenizer folder: also print its phone error rate")
    args = p.parse_args()
    torch.manual_seed(args.seed)

    shards = args.exp / "shards"
    index = json.loads((shards / "train.index.json").read_text())
    config = FlowConfig(**flow_model_config(args.preset, 0, index=index))
    for pair in args.set:
        key, value = pair.split("=", 1)
        kind = type(getattr(config, key))
        config = dataclasses.replace(config, **{key: value.lower() in ("1", "true") if kind is bool else kind(value)})
    flow = CosyVoiceFlow(config)
    print(f"flow: {sum(p.numel() for p in flow.parameters()) / 1e6:.2f} M parameters, {config}")
    if args.load:
        state = torch.load(args.load, map_location="cpu", weights_only=False)
        if "state_dict" in state:  # a train_flow stage's Lightning checkpoint
            config = FlowConfig(**state["hyper_parameters"]["model_config"])
            flow = CosyVoiceFlow(config)
            state = {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
        flow.load_state_dict(state)
    else:
        train_items = load_split(shards, "train")
        optim = {"name": "adamw", "lr": args.lr, "betas": [0.9, 0.95], "weight_decay": 0.01, "warmup_steps": 100,
                 "schedule": "cosine", "min_lr_ratio": 0.1}
        seconds = train(flow, train_items, args.steps, args.max_frames, optim, args.seed)
        print(f"trained {args.steps} steps in {seconds:.0f} s ({seconds / args.steps:.3f} s/step)")
        if args.save:
            torch.save(flow.state_dict(), args.save)

    flow.eval()
    mel_config = MelConfig.from_any(index["codec"]["mel"])
    features = MelCodec(MelCodecConfig(mel=mel_config, device="cpu"), vocoder=default_vocoder(mel_config))
    asr = build_asr("faster_whisper")
    phones = PhoneRecogniser(args.phone_asr) if args.phone_asr else None
    for split in args.split.split(","):
        score_split(args, flow, shards, split, mel_config, features, asr, phones)


def score_split(args, flow: CosyVoiceFlow, shards: Path, split: str, mel_config, features, asr,
                phones: PhoneRecogniser | None = None) -> None:
    """Prints WER and mel L1 of each system over the first --items utterances of ``split``."""
    test = load_split(shards, split, args.items)
    texts = {u.id: u.text for u in read_manifest(args.exp / "data" / f"{split}.jsonl")}
    references = [texts[r["id"]] for r in test]
    x = to_tensors(test)
    truth = [torch.as_tensor(r["mel"]).float() for r in test]
    systems = {"vocoded": truth, "mu": regression_mels(flow, x)}
    for nfe, temperature in itertools.product([int(n) for n in args.nfe.split(",")],
                                              [float(t) for t in args.temperature.split(",")]):
        mels, lengths = flow.sample(x["speech"], x["speech_lengths"], x["spk"], n_steps=nfe, cfg_scale=args.cfg,
                                    temperature=temperature, seed=args.seed)
        systems[f"flow NFE={nfe} T={temperature:g}"] = [mels[i, :n] for i, n in enumerate(lengths.tolist())]
    vocab = Vocabulary.load(shards / "vocab.json")
    symbols = [vocab.decode(r["tokens"].tolist()) for r in test]
    for name, mels in systems.items():
        wavs = vocode_mels(features, mel_config, mels)
        rates = error_rates(references, asr.transcribe(wavs, mel_config.sample_rate))
        per = f"  PER {phones.error_rate(wavs, mel_config.sample_rate, symbols):.3f}" if phones else ""
        print(f"{split} {name:>14}: WER {rates.wer:.3f}  mel L1 {mel_l1(mels, truth):.3f}{per}", flush=True)


if __name__ == "__main__":
    main()
