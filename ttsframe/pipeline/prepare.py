"""Stage `prepare`: corpus on disk -> validated manifests.

Writes `data/{train,dev,test}.jsonl`, `data/rejected.jsonl` ({id, audio, reason}) and
`data/summary.json`. Every candidate the corpus parser found ends in exactly one of them.
"""

from __future__ import annotations

import collections
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from data_prep import corpus_module
from ttsframe.data.manifest import SPLITS, Candidate, Utterance, write_manifest
from ttsframe.errors import UserError
from ttsframe.pipeline.validate import validate
from ttsframe.utils.atomic import write_json, write_jsonl

OUTPUT_DIR = "data"
DEPENDS_ON = ("data",)
READS = ()  # folders of other stages it reads (none: the corpus)


def run(cfg: DictConfig, ctx) -> dict:
    data_cfg = OmegaConf.to_object(cfg.data)
    candidates = corpus_module(data_cfg.corpus).find(data_cfg)
    if not candidates:
        raise UserError(f"data={cfg.choices.data} (root {data_cfg.root}): no utterances found; check data.root")
    for c in candidates:
        if c.split not in SPLITS:
            raise UserError(f"corpus parser gave split {c.split!r} for {c.id}; expected one of {SPLITS}")
    results = check_all(candidates, data_cfg)
    kept: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    rejected = []
    for candidate, result in zip(candidates, results):
        if isinstance(result, Utterance):
            kept[candidate.split].append(result)
        else:
            rejected.append({"id": candidate.id, "audio": candidate.audio, "split": candidate.split, "reason": result})
    for split in SPLITS:
        write_manifest(ctx.out_dir / f"{split}.jsonl", kept[split])
    write_jsonl(ctx.out_dir / "rejected.jsonl", rejected)
    summary = summarize(candidates, kept, rejected)
    write_json(ctx.out_dir / "summary.json", summary)
    print_summary(summary, ctx.out_dir)
    if summary["kept"] == 0:
        raise UserError(f"every utterance was rejected; reasons in {ctx.out_dir / 'rejected.jsonl'}")
    return {"found": summary["found"], "kept": summary["kept"], "rejected": summary["rejected"]}


def check_all(candidates: list[Candidate], data_cfg) -> list[Utterance | str]:
    """Validates candidates (duplicates first, then audio in worker processes), in order."""
    check = partial(
        validate,
        min_duration=data_cfg.min_duration,
        max_duration=data_cfg.max_duration,
        silence_db=data_cfg.silence_db,
    )
    seen: set[str] = set()
    results: list[Utterance | str | None] = []
    todo = []
    for i, c in enumerate(candidates):
        if c.id in seen:
            results.append(f"duplicate id {c.id}")
            continue
        seen.add(c.id)
        results.append(None)
        todo.append(i)
    progress = tqdm(total=len(todo), desc="validate", unit="utt", mininterval=1.0)
    pending = (candidates[i] for i in todo)
    if data_cfg.num_workers > 1 and len(todo) > 200:
        with ProcessPoolExecutor(data_cfg.num_workers) as pool:
            checked = pool.map(check, pending, chunksize=64)
            for i, result in zip(todo, checked):
                results[i] = result
                progress.update()
    else:
        for i, candidate in zip(todo, pending):
            results[i] = check(candidate)
            progress.update()
    progress.close()
    return results


def summarize(candidates: list[Candidate], kept: dict, rejected: list[dict]) -> dict:
    utterances = [u for split in SPLITS for u in kept[split]]
    summary = {
        "found": len(candidates),
        "kept": len(utterances),
        "rejected": len(rejected),
        "splits": {
            split: {
                "utterances": len(kept[split]),
                "hours": round(sum(u.duration for u in kept[split]) / 3600, 4),
                "speakers": len({u.speaker for u in kept[split]}),
            }
            for split in SPLITS
        },
        "rejected_by_reason": dict(collections.Counter(_reason_kind(r["reason"]) for r in rejected)),
        "sample_rates": dict(collections.Counter(str(u.sample_rate) for u in utterances)),
        "multichannel": sum(1 for u in utterances if u.channels > 1),
    }
    assert summary["kept"] + summary["rejected"] == summary["found"], summary
    return summary


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0].split(":")[0]


def print_summary(summary: dict, out_dir) -> None:
    splits = ", ".join(f"{k} {v['utterances']} ({v['hours'] * 60:.1f} min, {v['speakers']} spk)"
                       for k, v in summary["splits"].items())
    print(f"prepare: found {summary['found']} = kept {summary['kept']} + rejected {summary['rejected']}")
    print(f"prepare: {splits}")
    for reason, count in sorted(summary["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
        print(f"prepare: rejected {count:5d}  {reason}")
    if summary["multichannel"] or len(summary["sample_rates"]) > 1:
        print(f"prepare: sample rates {summary['sample_rates']}, {summary['multichannel']} multi-channel: "
              "converted to mono at the codec's rate when tokenized")
    if summary["rejected"]:
        print(f"prepare: rejection list: {out_dir / 'rejected.jsonl'}")
