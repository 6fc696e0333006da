"""Stage `tokenize`: manifests -> text ids + codec codes (or mels) in webdataset shards.

Writes under `shards/`: `vocab.json` (the frontend's inventory and the train split's symbols),
`coverage.json` (how often each inventory symbol occurs in train; the rare ones are printed),
the fitted codec when the
codec needs fitting (`codec.safetensors`), per split `<split>-%06d.tar`, a plan
(`<split>.plan.json`: which utterances go in which shard) and `<split>.index.json`. A shard is
written to a temporary name and renamed, and its `.done.json` sidecar is written after it,
so a killed run resumes from the first unfinished shard with no duplicates and no holes.

With `launcher=slurm launcher.array=N` the stage is three jobs (`slurm.launch_array`): a plan job
(vocabulary, codec fit, plans), an N-task array whose task k writes shards k, k+N, ... of each
split, and a final job (a plain run of the stage: every shard is there, so it writes the indexes
and marks the stage done). A task killed midway leaves its finished shards; the next run writes
only the missing ones.
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
from ttsframe.tokenizers.build import TRAIN_STAGE_DIR
from ttsframe.training import slurm
from ttsframe.utils.atomic import write_json

OUTPUT_DIR = "shards"
DEPENDS_ON = ("data", "codec", "text", "tokenizer")  # `tokenizer` only where the recipe has one
SHARD_SIZE = 1000  # utterances per shard (a few hundred MB of codes at most)
READS = ("data", TRAIN_STAGE_DIR)  # the manifests; a speech tokenizer trained by the recipe
LAUNCHES_JOBS = True  # launcher=slurm: one job, or with launcher.array=N a job array (see above)


def run(cfg: DictConfig, ctx) -> dict:
    if slurm.launcher_name(cfg) == "slurm":
        if int(cfg.launcher.array) > 1:
            return slurm.launch_array(cfg, ctx.index, ctx.name, ctx.out_dir, int(cfg.launcher.array), ctx.after)
        return slurm.launch(cfg, ctx.index, ctx.name, ctx.out_dir, ctx.after, slurm.one_task(cfg))
    part = slurm.array_task(cfg)  # None: the whole stage; PLAN: up to the plans; (k, N): shards k, k+N, ...
    data_dir = ctx.exp_dir / "data"
    manifests = load_manifests(data_dir)
    frontend = build_frontend(OmegaConf.to_object(cfg.text))
    symbols = phonemize(frontend, manifests, ctx.out_dir / "cache" / "symbols.jsonl")
    vocab = build_vocabulary(frontend, symbols["train"].values(), cfg.text.min_symbol_count, ctx.out_dir)
    codec = build_codec(codec_config(cfg, ctx.exp_dir))
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
        plan = write_plan(split, manifests[split], symbols[split], codec, vocab, shard_size, cfg, ctx.out_dir, extras,
                          check_only=isinstance(part, tuple))
        if part == slurm.PLAN:
            continue
        shards = write_split(split, plan, manifests[split], symbols[split], ids, codec, cfg, ctx.out_dir, extras, part)
        if part is not None:
            totals[split] = {"shards": len(shards)}  # of this task
            continue
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
    if part is not None:  # a job of the array: the final job writes the indexes and marks the stage done
        which = "the plans" if part == slurm.PLAN else f"task {part[0]} of {part[1]}"
        return {"pending": True, "note": f"{which} written; the array's final job marks the stage done", **totals}
    return totals


def codec_config(cfg: DictConfig, exp_dir: Path) -> dict:
    """The codec config; a semantic codec without `tokenizer` takes the run's train_tokenizer folder."""
    codec = OmegaConf.to_container(cfg.codec, resolve=True)
    if codec.get("name") == "semantic" and not codec.get("tokenizer"):
        codec["tokenizer"] = str(exp_dir / TRAIN_STAGE_DIR)
    return codec


def build_vocabulary(frontend, train_symbols, min_count: int, out_dir: Path) -> Vocabulary:
    """vocab.json (inventory + train symbols) and coverage.json; prints the train coverage. A frontend
    with a vocabulary of its own (a BPE tokenizer's: `vocabulary()`) gives it instead."""
    if hasattr(frontend, "vocabulary"):
        vocab = frontend.vocabulary()
        vocab.save(out_dir / "vocab.json")
        print(f"tokenize: the {frontend.settings().get('frontend')} tokenizer's own vocabulary: {len(vocab)} tokens")
        return vocab
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


def write_plan(split, utterances, symbols, codec, vocab, shard_size, cfg, out_dir: Path, extras: tuple = (),
               check_only: bool = False) -> list[list[str]]:
    """`<split>.plan.json` (utterance ids per shard, and a fingerprint of what the shards are made
    from); the shards of an earlier plan with another fingerprint are deleted. `check_only` (an
    array task) fails instead of writing: the plan job writes the plans."""
    plan = plan_split(split, utterances, shard_size, cfg.seed)
    plan_file = out_dir / f"{split}.plan.json"
    inputs = [plan, codec.describe(), vocab.symbols, [symbols[i] for ids in plan for i in ids],
              [extra.key for extra in extras]]
    stamp = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
    written = json.loads(plan_file.read_text()).get("fingerprint") if plan_file.is_file() else None
    if check_only:
        if written != stamp:
            raise UserError(f"{plan_file}: {'missing' if written is None else 'made from other inputs'}; "
                            "the array's plan job writes it (run the stage with launcher=slurm again)")
        return plan
    if written is not None and written != stamp:
        print(f"tokenize: {split}: inputs changed since the last run; rewriting its shards")
        for old in out_dir.glob(f"{split}-*"):
            old.unlink()
    write_json(plan_file, {"fingerprint": stamp, "shards": plan})
    return plan


def write_split(split, plan, utterances, symbols, token_ids, codec, cfg, out_dir: Path, extras: tuple = (),
                part: tuple[int, int] | None = None) -> list[ShardInfo]:
    """Writes the split's shards of `plan` that are not written yet; returns every shard's counts
    in order. `part` (k, N): only shards k, k+N, ... (an array task; it returns those)."""
    by_id = {u.id: u for u in utterances}
    shards = []
    numbers = range(len(plan)) if part is None else range(part[0], len(plan), part[1])
    progress = tqdm(total=sum(len(plan[n]) for n in numbers), desc=f"tokenize {split}", unit="utt", mininterval=1.0)
    for number in numbers:
        ids = plan[number]
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
    if part is None:
        for stale in out_dir.glob(f"{split}-*.tar"):
            if not any(stale.name == s.file for s in shards):
                stale.unlink()
    return shards
