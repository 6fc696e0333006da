"""Stage `synthesize`: zero-shot synthesis of a manifest split with the trained AR + NAR.

Each utterance of the split is said again from its text, in the voice of ANOTHER utterance of
the same speaker (the prompt): the next id of that speaker in sorted order (the first one after
the last), cut to `max_prompt_seconds`. Speakers with a single utterance have no prompt and are
left out (counted). The test voices are not in training, so this is zero-shot.

Writes under `synth/<split>/`: `<id>.wav` (atomically) and `items.jsonl` (one row per item: id,
text, speaker, prompt_id, prompt_text, prompt_audio, reference_audio, synth_audio,
seconds_generated, seconds_compute, rtf; `*_start` / `*_end` when the manifest has them).
Items are synthesized in fixed batches with seed `seed + batch number`, so a killed run resumes
(finished batches are skipped) with the same output as an uninterrupted one; `settings.json`
records the options and checkpoints, and a run with other ones starts over. The compute time
of a batch is shared among its items in proportion to the audio they got.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from pathlib import Path

from omegaconf import DictConfig

from ttsframe.data.audio import load_audio, save_audio
from ttsframe.data.manifest import Utterance, read_manifest
from ttsframe.errors import ConfigError, UserError
from ttsframe.inference import SynthesisItem, ValleSynthesizer
from ttsframe.modules.sampling import SamplingOptions
from ttsframe.utils.atomic import read_jsonl, write_json, write_jsonl

OUTPUT_DIR = "synth"
DEPENDS_ON = ("data", "codec", "text", "model", "trainer")
SHARD_DIR = "shards"
# Options of every stage that loads the trained models, with their defaults.
MODEL_OPTIONS = {"ar_stage": "train_ar", "nar_stage": "train_nar", "checkpoint": "best", "max_prompt_seconds": 3.0}
STAGE_OPTIONS = {**MODEL_OPTIONS, "split": "test", "max_items": None, "batch_size": 8, "device": "auto"}
SAMPLING_OPTIONS = tuple(f.name for f in dataclasses.fields(SamplingOptions))  # defaults: SamplingOptions'


def stage_options(ctx, defaults: dict, extra: tuple[str, ...] = ()) -> dict:
    """The stage's options over `defaults` (+ `extra` keys without defaults); unknown keys fail."""
    valid = {*defaults, *extra}
    unknown = sorted(set(ctx.options) - valid)
    if unknown:
        raise ConfigError(f"stage {ctx.name}: unknown option(s) {unknown}; valid: {', '.join(sorted(valid))}")
    options = {**defaults, **ctx.options}
    if options["checkpoint"] not in ("best", "last"):
        raise ConfigError(f"stage {ctx.name}: checkpoint must be best or last, got {options['checkpoint']!r}")
    return options


def checkpoint_file(exp_dir: Path, stage: str, which: str) -> Path:
    """`<stage>/checkpoints/<which>.ckpt`; `last.ckpt` when there is no `best.ckpt` (no validation)."""
    folder = exp_dir / stage / "checkpoints"
    path = folder / f"{which}.ckpt"
    if not path.is_file() and which == "best" and (folder / "last.ckpt").is_file():
        print(f"{stage}: no best.ckpt (no validation loss); using last.ckpt")
        path = folder / "last.ckpt"
    if not path.is_file():
        raise UserError(f"{path} not found: run the `{stage}` train stage first")
    return path


def load_synthesizer(cfg: DictConfig, exp_dir: Path, options: dict, device: str) -> tuple[ValleSynthesizer, dict]:
    """The synthesizer of the run's trained stages (`ar_stage`, `nar_stage` options), and
    {stage name: checkpoint file} it was loaded from."""
    files = {options[k]: checkpoint_file(exp_dir, options[k], options["checkpoint"]) for k in ("ar_stage", "nar_stage")}
    synth = ValleSynthesizer.from_checkpoints(
        files[options["ar_stage"]], files[options["nar_stage"]], exp_dir / SHARD_DIR, cfg.codec, cfg.text,
        device=device, max_prompt_seconds=options["max_prompt_seconds"])
    return synth, files


def pair_prompts(utterances: list[Utterance]) -> tuple[list[tuple[Utterance, Utterance]], list[str]]:
    """(target, prompt) pairs: the prompt is the speaker's next utterance in id order, cyclically.

    Returns the pairs, interleaved across speakers (so any prefix covers many voices), and the
    speakers left out for having a single utterance.
    """
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for u in utterances:
        by_speaker[u.speaker].append(u)
    queues, alone = [], []
    for speaker in sorted(by_speaker):
        group = sorted(by_speaker[speaker], key=lambda u: u.id)
        if len(group) < 2:
            alone.append(speaker)
            continue
        queues.append([(u, group[(i + 1) % len(group)]) for i, u in enumerate(group)])
    pairs = [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
    return pairs, alone


def run(cfg: DictConfig, ctx) -> dict:
    options = stage_options(ctx, STAGE_OPTIONS, SAMPLING_OPTIONS)
    manifest = ctx.exp_dir / "data" / f"{options['split']}.jsonl"
    if not manifest.is_file():
        raise UserError(f"{manifest} not found: run the prepare stage first")
    pairs, alone = pair_prompts(read_manifest(manifest))
    if alone:
        print(f"synthesize: {len(alone)} speaker(s) with a single utterance have no prompt; left out")
    if options["max_items"] is not None:
        pairs = pairs[: int(options["max_items"])]
    sampling = SamplingOptions(**{k: options[k] for k in SAMPLING_OPTIONS if k in options})
    seed = int(options.get("seed", cfg.seed))
    synth, checkpoints = load_synthesizer(cfg, ctx.exp_dir, options, options["device"])
    out_dir = ctx.out_dir / options["split"]
    rows = earlier_rows(out_dir, {**options, "seed": seed}, checkpoints, ctx.force)
    rows = {t.id: rows[t.id] for t, _ in pairs if t.id in rows}
    size = max(1, int(options["batch_size"]))
    done_now = []
    for number, start in enumerate(range(0, len(pairs), size)):
        batch = pairs[start: start + size]
        if all(t.id in rows and (out_dir / f"{t.id}.wav").is_file() for t, _ in batch):
            continue
        new = synthesize_batch(synth, batch, dataclasses.replace(sampling, seed=seed + number), out_dir)
        rows.update((row["id"], row) for row in new)
        done_now += new
        write_jsonl(out_dir / "items.jsonl", (rows[t.id] for t, _ in pairs if t.id in rows))
    return report(list(rows.values()), done_now, len(pairs), alone, options["split"])


def earlier_rows(out_dir: Path, options: dict, checkpoints: dict[str, Path], force: bool) -> dict[str, dict]:
    """{id: row} of an earlier run to resume, if it had the same options and checkpoints; else {}.

    Records the current settings in `out_dir/settings.json`.
    """
    stamp = {"options": options, "checkpoints": {k: [str(p), p.stat().st_size, p.stat().st_mtime_ns]
                                                  for k, p in checkpoints.items()}}
    stamp = json.loads(json.dumps(stamp, default=str))
    settings, items = out_dir / "settings.json", out_dir / "items.jsonl"
    same = settings.is_file() and json.loads(settings.read_text(encoding="utf-8")) == stamp
    if items.is_file() and not same and not force:
        print(f"synthesize: options or checkpoints changed since {items} was written; synthesizing all again")
    write_json(settings, stamp)
    return {row["id"]: row for row in read_jsonl(items)} if same and not force and items.is_file() else {}


def synthesize_batch(synth: ValleSynthesizer, batch: list[tuple[Utterance, Utterance]], sampling: SamplingOptions,
                     out_dir: Path) -> list[dict]:
    """Synthesizes and saves one batch; returns its items.jsonl rows."""
    rate = synth.sample_rate
    items = [SynthesisItem(target.text, load_audio(prompt.audio, rate, prompt.start, prompt.end)[0], rate, prompt.text)
             for target, prompt in batch]
    began = time.perf_counter()
    wavs = synth.synthesize(items, sampling)
    compute = time.perf_counter() - began
    total = sum(len(w) for w in wavs) / rate
    rows = []
    for (target, prompt), wav in zip(batch, wavs):
        path = out_dir / f"{target.id}.wav"
        save_audio(str(path), wav, rate)
        seconds = len(wav) / rate
        share = compute * seconds / total if total > 0 else compute / len(batch)
        rows.append({
            "id": target.id, "text": target.text, "speaker": target.speaker, "prompt_id": prompt.id,
            "prompt_text": prompt.text, "prompt_audio": prompt.audio, **_window("prompt", prompt),
            "reference_audio": target.audio, **_window("reference", target), "synth_audio": str(path),
            "seconds_generated": round(seconds, 3), "seconds_compute": round(share, 4),
            "rtf": round(share / seconds, 4) if seconds > 0 else None,
        })
    return rows


def _window(prefix: str, u: Utterance) -> dict:
    return {f"{prefix}_{k}": getattr(u, k) for k in ("start", "end") if getattr(u, k) is not None}


def report(rows: list[dict], done_now: list[dict], planned: int, alone: list[str], split: str) -> dict:
    """Prints and returns the counts and the real-time factor (of this run's items when any)."""
    measured = done_now or rows
    generated = sum(r["seconds_generated"] for r in measured)
    compute = sum(r["seconds_compute"] for r in measured)
    rtf = round(compute / generated, 4) if generated > 0 else None
    print(f"synthesize: {split}: {len(rows)}/{planned} items ({len(done_now)} now), "
          f"{generated:.1f} s of audio in {compute:.1f} s: RTF {rtf}")
    return {"split": split, "items": len(rows), "synthesized_now": len(done_now), "no_prompt_speakers": len(alone),
            "seconds_generated": round(generated, 2), "seconds_compute": round(compute, 2), "rtf": rtf}
