"""Stage `tokenize`: manifests -> text ids + codec codes (or mels) in webdataset shards.

Writes under `shards/`: `vocab.json` (the frontend's inventory and the train split's symbols),
`coverage.json` (how often each inventory symbol occurs in train; the rare ones are printed),
the fitted codec when the
codec needs fitting (`codec.safetensors`), per split `<split>-%06d.tar`, a plan
(`<split>.plan.json`: which utterances go in which shard) and `<split>.index.json`. A shard is
written to a temporary name and renamed, and its `.done.json` sidecar is written after it,
so a killed run resumes from the first unfinished shard with no duplicates and no holes.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ttsframe.codecs import build_codec
from ttsframe.data.manifest import SPLITS, Utterance, read_manifest
from ttsframe.data.shards import ShardInfo, shard_name, write_index
from ttsframe.errors import UserError
from ttsframe.pipeline.encode import encode_shard, fit_codec
from ttsframe.pipeline.extras import build_extras
from ttsframe.text import SPECIALS, Vocabulary, build_frontend
from ttsframe.text.inventory import coverage
from ttsframe.utils.atomic import write_json

OUTPUT_DIR = "shards"
DEPENDS_ON = ("data", "codec", "text", "tokenizer")  # `tokenizer` only where the recipe has one
SHARD_SIZE = 1000  # utterances per shard (a few hundred MB of codes at most)


def run(cfg: DictConfig, ctx) -> dict:
    data_dir = ctx.exp_dir / "data"
    manifests = load_manifests(data_dir)
    frontend = build_frontend(OmegaConf.to_object(cfg.text))
    symbols = phonemize(frontend, manifests, ctx.out_dir / "cache" / "symbols.jsonl")
    vocab = build_vocabulary(frontend, symbols["train"].values(), cfg.text.min_symbol_count, ctx.out_dir)
    codec = build_codec(cfg.codec)
    if getattr(codec, "needs_fit", False):
        fit_codec(codec, manifests["train"], ctx.out_dir / "codec.safetensors")
    shard_size = int(ctx.options.get("shard_size", SHARD_SIZE))
    extras = build_extras(cfg, ctx.options, ctx.exp_dir)
    totals = {}
    for split in SPLITS:
        ids = {u.id: vocab.encode(symbols[split][u.id], unknown="error" if split == "train" else "unk")
               for u in manifests[split]}
        unknown = sum(1 for seq in ids.values() for i in seq if i == vocab.unk_id)
        if unknown:
            print(f"tokenize: {split}: {unknown} symbols not in the train vocabulary mapped to <unk>")
        shards = write_split(split, manifests[split], symbols[split], ids, codec, vocab, shard_size, cfg, ctx.out_dir,
                             extras)
        index = write_index(
            ctx.out_dir, split, shards,
            feature="codes" if codec.n_codebooks > 0 else "mel",
            codec=codec.describe(), sample_rate=codec.sample_rate, frame_rate=codec.frame_rate,
            n_codebooks=codec.n_codebooks, codebook_size=codec.codebook_size,
            vocab="vocab.json", vocab_size=len(vocab),
            **{key: value for extra in extras for key, value in extra.describe().items()},
        )
        totals[split] = {"samples": index["samples"], "frames": index["frames"], "shards": len(shards)}
        print(f"tokenize: {split}: {index['samples']} utterances, {index['frames']} frames, {len(shards)} shards")
    return totals


def build_vocabulary(frontend, train_symbols, min_count: int, out_dir: Path) -> Vocabulary:
    """vocab.json (inventory + train symbols) and coverage.json; prints the train coverage."""
    train_symbols = list(train_symbols)
    inventory = frontend.inventory()
    vocab = Vocabulary.build(train_symbols, frontend.settings(), inventory.symbols if inventory else ())
    vocab.save(out_dir / "vocab.json")
    if inventory is None:
        print(f"tokenize: no symbol inventory is recorded for {frontend.settings().get('frontend')} "
              f"language {frontend.settings().get('language')!r}: the vocabulary holds the train split's "
              f"{len(vocab) - len(SPECIALS)} symbols only")
        return vocab
    found = coverage(inventory, train_symbols, min_count)
    write_json(out_dir / "coverage.json", {**found.to_json(), "untrained": vocab.untrained})
    print(f"tokenize: text coverage: {found.summary('train')}")
    if vocab.untrained:
        print(f"tokenize: in the vocabulary but never in train (embeddings stay untrained): "
              f"{', '.join(map(repr, vocab.untrained))}")
    return vocab


def load_manifests(data_dir: Path) -> dict[str, list[Utterance]]:
    manifests = {}
    for split in SPLITS:
        path = data_dir / f"{split}.jsonl"
        if not path.is_file():
            raise UserError(f"{path} not found: run the prepare stage first (make recipe=R stage=0)")
        manifests[split] = read_manifest(path)
    if not manifests["train"]:
        raise UserError(f"{data_dir / 'train.jsonl'} is empty: nothing to build a vocabulary from")
    return manifests


def phonemize(frontend, manifests: dict, cache: Path) -> dict[str, dict[str, list[str]]]:
    """{split: {utterance id: symbols}}, reusing the symbol cache of earlier runs."""
    result = {}
    for split in SPLITS:
        texts = [u.text for u in manifests[split]]
        seqs = frontend.symbols_cached(texts, cache) if texts else []
        result[split] = {u.id: seq for u, seq in zip(manifests[split], seqs)}
    return result


def plan_split(split: str, utterances: list[Utterance], shard_size: int, seed: int) -> list[list[str]]:
    """Utterance ids per shard: a seeded shuffle (mixes speakers and lengths) cut into shards."""
    ids = sorted(u.id for u in utterances)
    random.Random(f"{seed}-{split}").shuffle(ids)
    return [ids[i:i + shard_size] for i in range(0, len(ids), shard_size)]


def write_split(split, utterances, symbols, token_ids, codec, vocab, shard_size, cfg, out_dir: Path,
                extras: tuple = ()) -> list[ShardInfo]:
    """Writes the split's shards that are not written yet; returns every shard's counts in order."""
    plan = plan_split(split, utterances, shard_size, cfg.seed)
    plan_file = out_dir / f"{split}.plan.json"
    inputs = [plan, codec.describe(), vocab.symbols, [symbols[i] for ids in plan for i in ids],
              [extra.key for extra in extras]]
    stamp = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if plan_file.is_file() and json.loads(plan_file.read_text()).get("fingerprint") != stamp:
        print(f"tokenize: {split}: inputs changed since the last run; rewriting its shards")
        for old in out_dir.glob(f"{split}-*"):
            old.unlink()
    write_json(plan_file, {"fingerprint": stamp, "shards": plan})
    by_id = {u.id: u for u in utterances}
    shards = []
    progress = tqdm(total=len(utterances), desc=f"tokenize {split}", unit="utt", mininterval=1.0)
    for number, ids in enumerate(plan):
        path = out_dir / shard_name(split, number)
        done = path.with_suffix(".done.json")
        if path.is_file() and done.is_file():
            shards.append(ShardInfo(**json.loads(done.read_text())))
            progress.update(len(ids))
        else:
            batch = [by_id[i] for i in ids]
            shards.append(encode_shard(path, batch, symbols, token_ids, codec, cfg.codec.batch_seconds,
                                       on_batch=progress.update, extras=extras))
            write_json(done, shards[-1].__dict__)
    progress.close()
    for stale in out_dir.glob(f"{split}-*.tar"):
        if not any(stale.name == s.file for s in shards):
            stale.unlink()
    return shards
