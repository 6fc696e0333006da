"""Stage `evaluate`: scores the synthesize stage's output the way papers report it.

Reads `synth/<split>/items.jsonl` and writes under `eval/<split>/`:

    audio/<id>.{prompt,ground_truth,resynthesis,synthesis}.wav   what was scored (prompt as used)
    scores.jsonl     one row per (item, system): the per-item metrics (`ttsframe.eval.scorers`)
    metrics.json     protocol, skipped metrics with reasons, aggregates per system, speed, items
    report.html      aggregates side by side + per item players and spectrograms

Systems: `ground_truth` (the recordings, so a TTS WER has the ASR's own error next to it),
`resynthesis` (the recordings through the trained codec / vocoder: the ceiling) and
`synthesis`. Aggregates: corpus WER / CER (all edits / all reference words), the mean of every
other metric over the items that have it, and for `synthesis` the real-time factor. `speed`
adds the seconds of every finished stage (from the runner's `.done` markers).

Items are scored in chunks and `scores.jsonl` is rewritten after each, so a killed run resumes
where it stopped; a change of the eval config, the models it loads or the synthesis settings
scores everything again. Stage options: the family's model stages (as for `synthesize`, used
for the resynthesis) and `split`. The resynthesis decodes with the synthesize stage's sampling
options (its `settings.json`), so the ceiling and the synthesis share the decoder's settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ttsframe.data.audio import load_audio, resample, save_audio
from ttsframe.errors import UserError
from ttsframe.eval.scorers import EVAL_RATE, SYSTEMS, Scorers
from ttsframe.pipeline import synthesize
from ttsframe.pipeline.synthesize import load_synthesizer, model_options, parts_rtf, stage_family, stage_options
from ttsframe.utils.atomic import read_jsonl, write_json, write_jsonl

OUTPUT_DIR = "eval"
DEPENDS_ON = ("data", "codec", "text", "model", "trainer", "vocoder", "eval")
CHUNK = 32  # items scored between two saves of scores.jsonl


def reads(cfg: DictConfig, ctx) -> tuple[str, ...]:
    """What the synthesize stage reads (the models for the resynthesis), and its output."""
    return (*synthesize.reads(cfg, ctx), synthesize.OUTPUT_DIR)


def run(cfg: DictConfig, ctx) -> dict:
    from ttsframe.config.evaluation import EvalConfig

    cls = stage_family(cfg, ctx)
    options = stage_options(ctx, {**model_options(cls), "split": "test"})
    split = options["split"]
    synth_dir = ctx.exp_dir / "synth" / split
    if not (synth_dir / "items.jsonl").is_file():
        raise UserError(f"{synth_dir / 'items.jsonl'} not found: run the synthesize stage first")
    ecfg = cfg.eval if "eval" in cfg else OmegaConf.structured(EvalConfig)
    items = read_jsonl(synth_dir / "items.jsonl")
    if ecfg.max_items is not None:
        items = items[: int(ecfg.max_items)]
    if not items:
        raise UserError(f"{synth_dir / 'items.jsonl'} has no items: nothing to evaluate")
    out_dir = ctx.out_dir / split
    systems = [s for s in SYSTEMS if s == "synthesis" or bool(ecfg[s])]

    scorers = Scorers.from_config(ecfg)
    protocol = scorers.protocol()
    settings = _read_json(synth_dir / "settings.json") or {}
    stamp = _stamp({"eval": OmegaConf.to_container(ecfg, resolve=True), "protocol": protocol,
                    "synthesis": settings, "systems": systems})
    scores = earlier_scores(out_dir, stamp, ctx.force)
    prompt_seconds = float((settings.get("options") or {}).get("max_prompt_seconds") or options["max_prompt_seconds"])
    synth, sampling = None, synthesis_options(cls.OPTIONS, settings)
    if "resynthesis" in systems:
        synth, _ = load_synthesizer(cfg, ctx.exp_dir, options, ecfg.device, cls)

    began = time.perf_counter()
    progress = tqdm(total=len(items), desc=f"evaluate {split}", unit="utt", mininterval=1.0)
    for start in range(0, len(items), CHUNK):
        chunk = items[start: start + CHUNK]
        if all((row["id"], s) in scores for row in chunk for s in systems):
            progress.update(len(chunk))
            continue
        audio = gather_audio(chunk, out_dir / "audio", prompt_seconds, synth, sampling)
        for system, rows in score_chunk(scorers, chunk, audio, systems).items():
            scores.update({(row["id"], system): {"id": row["id"], "system": system, **metrics}
                           for row, metrics in zip(chunk, rows)})
        write_jsonl(out_dir / "scores.jsonl", (scores[r["id"], s] for r in items for s in systems
                                               if (r["id"], s) in scores))
        progress.update(len(chunk))
    progress.close()

    metrics = {
        "set": split, "recipe": cfg.get("recipe"), "exp_dir": str(ctx.exp_dir), "family": cls.FAMILY,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "protocol": protocol, "skipped": scorers.skipped, "systems": systems,
        "aggregates": {s: aggregate(items, scores, s) for s in systems},
        "by_speaker": by_speaker(items, scores, systems),
        "speed": speed(ctx.exp_dir, items),
        "items": [item_entry(row, scores, systems) for row in items],
    }
    metrics["speed"]["evaluate_seconds"] = round(time.perf_counter() - began, 2)
    write_json(out_dir / "metrics.json", metrics)
    from ttsframe.eval.report import write_report

    from ttsframe.training.curves import read_curves

    stages = [options[key] for key in cls.CHECKPOINT_STAGES if options.get(key)]
    curves = {stage: found for stage in stages if (found := read_curves(ctx.exp_dir / stage)) is not None}
    report = write_report(out_dir, metrics, curves=curves)
    print_summary(metrics)
    return {"split": split, "items": len(items), "metrics": str(out_dir / "metrics.json"), "report": str(report),
            **{f"{s}_{k}": metrics["aggregates"][s].get(k) for s in systems for k in ("wer", "sim_to_prompt")}}


def earlier_scores(out_dir: Path, stamp: str, force: bool) -> dict[tuple[str, str], dict]:
    """{(id, system): row} of an earlier run with the same stamp (else {}); records the stamp."""
    state = out_dir / "state.json"
    same = not force and (_read_json(state) or {}).get("stamp") == stamp
    rows = read_jsonl(out_dir / "scores.jsonl") if same and (out_dir / "scores.jsonl").is_file() else []
    if not same and (out_dir / "scores.jsonl").is_file():
        print(f"evaluate: settings changed since {out_dir / 'scores.jsonl'} was written; scoring everything again")
    write_json(state, {"stamp": stamp})
    return {(row["id"], row["system"]): row for row in rows}


def synthesis_options(options_class: type, settings: dict):
    """The family's sampling options (`options_class`) as the synthesize stage used them
    (its `settings.json`); the dataclass's defaults for the fields it did not set."""
    used = settings.get("options") or {}
    return options_class(**{f.name: used[f.name] for f in dataclasses.fields(options_class) if f.name in used})


def gather_audio(chunk: list[dict], audio_dir: Path, prompt_seconds: float, synth,
                 sampling=None) -> dict[str, list[np.ndarray]]:
    """Loads (and copies into `audio_dir`) the prompt, ground truth, synthesis and, with a
    synthesizer, the resynthesis of each item (decoded with `sampling`, the family's options);
    returns {kind: [(T,) at EVAL_RATE]}."""
    audio: dict[str, list[np.ndarray]] = {"prompt": [], "ground_truth": [], "synthesis": []}
    native_references = []
    for row in chunk:
        prompt, rate = load_audio(row["prompt_audio"], None, row.get("prompt_start"), row.get("prompt_end"))
        prompt = prompt[: int(prompt_seconds * rate)]
        reference, ref_rate = load_audio(row["reference_audio"], None, row.get("reference_start"),
                                         row.get("reference_end"))
        synthesis, syn_rate = load_audio(row["synth_audio"])
        for kind, wav, sr in (("prompt", prompt, rate), ("ground_truth", reference, ref_rate),
                              ("synthesis", synthesis, syn_rate)):
            save_audio(str(audio_dir / f"{row['id']}.{kind}.wav"), wav, sr)
            audio[kind].append(resample(wav, sr, EVAL_RATE))
        native_references.append((reference, ref_rate))
    if synth is not None:
        audio["resynthesis"] = []
        for row, (reference, rate) in zip(chunk, native_references):
            [wav] = synth.resynthesize([reference], rate, sampling)
            save_audio(str(audio_dir / f"{row['id']}.resynthesis.wav"), wav, synth.sample_rate)
            audio["resynthesis"].append(resample(wav, synth.sample_rate, EVAL_RATE))
    return audio


def score_chunk(scorers: Scorers, chunk: list[dict], audio: dict, systems: list[str]) -> dict[str, list[dict]]:
    """{system: per item metrics} for one chunk."""
    texts = [row["text"] for row in chunk]
    prompts = scorers.embed(audio["prompt"])
    references = audio["ground_truth"]
    reference_embeddings = scorers.embed(references)
    out = {}
    for system in systems:
        compared = system != "ground_truth"
        out[system] = scorers.score(system, audio[system], texts, prompts,
                                    references if compared else None, reference_embeddings if compared else None,
                                    None if compared else reference_embeddings)  # ground truth: embedded above
    if "synthesis" in out:
        for row, metrics in zip(chunk, out["synthesis"]):
            metrics.update({k: row.get(k) for k in ("seconds_generated", "seconds_compute", "rtf", "length_ratio")})
    return out


def aggregate(items: list[dict], scores: dict, system: str) -> dict:
    """Corpus WER / CER, the mean of every other numeric metric, and the item count."""
    from ttsframe.eval.wer import error_rates

    rows = [scores[r["id"], system] for r in items if (r["id"], system) in scores]
    texts = [r["text"] for r in items if (r["id"], system) in scores]
    out: dict = {"items": len(rows)}
    if not rows:
        return out
    rates = error_rates(texts, [row.get("hypothesis") or "" for row in rows])
    out.update(wer=round(rates.wer, 5), cer=round(rates.cer, 5))
    keys = sorted({k for row in rows for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    for key in keys:
        if key in ("wer", "cer", "seconds_compute", "rtf", "seconds_generated", "length_ratio"):
            continue
        values = [row[key] for row in rows if isinstance(row.get(key), (int, float))]
        out[key] = round(float(np.mean(values)), 5) if values else None
    if system == "synthesis":
        generated = sum(row.get("seconds_generated") or 0.0 for row in rows)
        compute = sum(row.get("seconds_compute") or 0.0 for row in rows)
        out.update(seconds_generated=round(generated, 2), rtf=round(compute / generated, 4) if generated else None)
        ratios = [row["length_ratio"] for row in rows if isinstance(row.get("length_ratio"), (int, float))]
        if ratios:  # output / recording duration: the median, and the share of items within 0.8-1.25x
            out.update(length_ratio_median=round(float(np.median(ratios)), 4),
                       length_within_0p8_1p25=round(float(np.mean([0.8 <= r <= 1.25 for r in ratios])), 4))
    return out


def by_speaker(items: list[dict], scores: dict, systems: list[str]) -> dict:
    """{speaker: {system: aggregate}} of the items of each speaker (the prompt's voice, which the
    target's is), so a voice the ASR itself misreads shows beside the others; {} for one speaker."""
    speakers = sorted({str(r.get("speaker")) for r in items})
    if len(speakers) < 2:
        return {}
    return {speaker: {s: aggregate([r for r in items if str(r.get("speaker")) == speaker], scores, s) for s in systems}
            for speaker in speakers}


def speed(exp_dir: Path, items: list[dict]) -> dict:
    """The synthesis RTF, overall and per part, and the seconds every finished stage took (the
    runner's markers)."""
    stages = {}
    for marker in sorted((exp_dir / ".done").glob("stage*.json")):
        done = _read_json(marker) or {}
        if "seconds" in done:
            stages[marker.stem.split("_", 1)[1]] = done["seconds"]
    generated = sum(r.get("seconds_generated") or 0.0 for r in items)
    compute = sum(r.get("seconds_compute") or 0.0 for r in items)
    return {"synthesis_rtf": round(compute / generated, 4) if generated else None,
            "synthesis_parts_rtf": parts_rtf(items), "stages": stages,
            "pipeline_seconds": round(sum(stages.values()), 2)}


def item_entry(row: dict, scores: dict, systems: list[str]) -> dict:
    kinds = ["prompt", *systems]
    return {"id": row["id"], "text": row["text"], "speaker": row.get("speaker"), "prompt_text": row.get("prompt_text"),
            "audio": {kind: f"audio/{row['id']}.{kind}.wav" for kind in kinds},
            **{s: {k: v for k, v in scores.get((row["id"], s), {}).items() if k not in ("id", "system")}
               for s in systems}}


def print_summary(metrics: dict) -> None:
    shown = ("wer", "cer", "sim_to_prompt", "mcd", "dnsmos_ovrl", "utmos", "pesq", "stoi", "rtf", "length_ratio_median")
    for system, values in metrics["aggregates"].items():
        parts = ", ".join(f"{k} {values[k]}" for k in shown if values.get(k) is not None)
        print(f"evaluate: {metrics['set']}: {system} ({values.get('items')} items): {parts}")
    for speaker, per_system in (metrics.get("by_speaker") or {}).items():
        wers = " / ".join(f"{per_system[s].get('wer')}" for s in per_system)
        sim = (per_system.get("synthesis") or {}).get("sim_to_prompt")
        print(f"evaluate: {metrics['set']}: {speaker} ({(per_system.get('synthesis') or {}).get('items')} items): "
              f"WER {' / '.join(per_system)} {wers}" + (f", synthesis SIM {sim}" if sim is not None else ""))
    for name, reason in metrics["skipped"].items():
        print(f"evaluate: {name}: skipped ({reason})")


def _stamp(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
