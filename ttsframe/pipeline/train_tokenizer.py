"""Stage `train_tokenizer`: trains (or fits) the recipe's speech tokenizer on its train split.

`tokenizer=s3_asr` (default of the cosyvoice recipe): CosyVoice's supervised tokenizer, an ASR
encoder with an FSQ bottleneck trained with CTC against the train split's phones (the text
frontend's symbols without word boundaries, punctuation and stress marks; the CTC table holds
every phone of the frontend's inventory). Dev phone error rate of the quantised encoder and
codebook use are logged every `tokenizer.log_every` steps and kept in `tokenizer.json`.
`tokenizer=whisper_kmeans`: k-means over a Whisper encoder, fitted on train.
`tokenizer=s3_onnx` (CosyVoice's released files) needs no training, nor does a trained tokenizer
named by `tokenizer.checkpoint`: the stage says so and ends.

Writes `train_tokenizer/tokenizer.safetensors` + `tokenizer.json` (atomically, the weights
first). Training is deterministic for a seed and a torch thread count on a given machine, so a
killed stage that runs again from the start gives the same tokenizer, and the shards written
from it are the same.
"""

from __future__ import annotations

import json
import time

import torch
from omegaconf import DictConfig, OmegaConf

from ttsframe.data.audio import load_audio
from ttsframe.errors import ConfigError
from ttsframe.pipeline.tokenize import load_manifests, phonemize
from ttsframe.text import build_frontend
from ttsframe.tokenizers.build import TRAIN_STAGE_DIR, is_trained_here

OUTPUT_DIR = TRAIN_STAGE_DIR
DEPENDS_ON = ("data", "text", "tokenizer")
READS = ("data",)  # the manifests
MAX_DEV_UTTERANCES = 120  # dev utterances scored at each log step


def run(cfg: DictConfig, ctx) -> dict:
    if "tokenizer" not in cfg:
        raise ConfigError(f"stage {ctx.name}: the recipe needs a `tokenizer` config (defaults: tokenizer: s3_asr)")
    if not is_trained_here(cfg.tokenizer.name):
        print(f"train_tokenizer: tokenizer={cfg.tokenizer.name} is used as it is; nothing to train")
        return {"trained": False}
    if cfg.tokenizer.get("checkpoint"):
        print(f"train_tokenizer: tokenizer.checkpoint={cfg.tokenizer.checkpoint} is used as it is; nothing to train")
        return {"trained": False, "checkpoint": str(cfg.tokenizer.checkpoint)}
    if cfg.tokenizer.name == "whisper_kmeans":
        from ttsframe.tokenizers.whisper_kmeans import fit_whisper_kmeans

        return fit_whisper_kmeans(cfg.tokenizer, load_manifests(ctx.exp_dir / "data")["train"], ctx.out_dir)
    return train_s3_asr_stage(cfg, ctx)


def train_s3_asr_stage(cfg: DictConfig, ctx) -> dict:
    from ttsframe.tokenizers.s3_asr.ctc import PhoneTable
    from ttsframe.tokenizers.s3_asr.features import AsrFeatureConfig, LogMel, log_mel
    from ttsframe.tokenizers.s3_asr.io import save_tokenizer
    from ttsframe.tokenizers.s3_asr.model import S3AsrModel
    from ttsframe.tokenizers.s3_asr.presets import get_preset
    from ttsframe.tokenizers.s3_asr.train import Example, TrainOptions, train_s3_asr

    t = cfg.tokenizer
    manifests = load_manifests(ctx.exp_dir / "data")
    frontend = build_frontend(OmegaConf.to_object(cfg.text))
    symbols = phonemize(frontend, {"train": manifests["train"], "dev": manifests["dev"][:MAX_DEV_UTTERANCES],
                                   "test": []}, ctx.out_dir / "cache" / "symbols.jsonl")
    inventory = frontend.inventory()
    table = PhoneTable.from_sequences([*symbols["train"].values(), sorted(inventory.units) if inventory else []])
    features = AsrFeatureConfig()
    front = LogMel(features)
    began = time.perf_counter()

    def examples(split: str) -> list:
        out = []
        for u in manifests[split][: None if split == "train" else MAX_DEV_UTTERANCES]:
            targets = table.encode(symbols[split][u.id])
            if targets:
                wav, rate = load_audio(u.audio, features.sample_rate, u.start, u.end)
                out.append(Example(log_mel(wav, rate, front), tuple(targets)))
        return out

    train, dev = examples("train"), examples("dev")
    print(f"train_tokenizer: {len(train)} train / {len(dev)} dev utterances, {len(table.phones)} phones, "
          f"features in {time.perf_counter() - began:.1f} s")
    torch.manual_seed(t.seed)
    model = S3AsrModel(get_preset(t.preset, table.n_symbols, t.subsample))
    options = TrainOptions(steps=t.steps, lr=t.lr, lr_warmup_steps=t.lr_warmup_steps,
                           quantizer_warmup_steps=t.quantizer_warmup_steps, batch_frames=t.batch_frames,
                           log_every=t.log_every, max_minutes=t.max_minutes, spec_augment=t.spec_augment,
                           vtlp=t.vtlp, seed=t.seed)
    history = train_s3_asr(model, train, dev, options, log=lambda row: print(f"train_tokenizer: {json.dumps(row)}"))
    save_tokenizer(ctx.out_dir, model, table.phones, features, history)
    last = history[-1] if history else {}
    print(f"train_tokenizer: saved {ctx.out_dir / 'tokenizer.safetensors'} "
          f"({model.config.codebook_size} codes at {features.frame_rate / t.subsample:g} Hz)")
    return {"trained": True, "steps": last.get("step"), "dev_per": last.get("per"),
            "codes_used": last.get("codes_used"), "perplexity": last.get("perplexity"),
            "seconds": round(time.perf_counter() - began, 1), "phones": len(table.phones)}
