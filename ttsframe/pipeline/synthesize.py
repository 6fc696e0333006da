"""Stage `synthesize`: zero-shot synthesis of a manifest split with the trained models of any family.

Each utterance of the split is said again from its text, in the voice of ANOTHER utterance of
the same speaker (the prompt): the next id of that speaker in sorted order (the first one after
the last) that lasts at most `max_prompt_seconds`, said whole with its exact transcript; when the
speaker has none that short, the next one, cut to `max_prompt_seconds` with an estimated transcript
cut (`ttsframe.inference.prompt`). Whole prompts are what training's joined rows show: on a
VALL-E that memorized 16 utterances, greedy synthesis gave WER 0.486 with whole prompts and
0.726 with the same prompts cut to 3 s. Speakers with a single utterance have no prompt and are
left out (counted). The test voices are not in training, so this is zero-shot.

The family (the run's `model.family`, or the one whose stage options the stage names) picks the
synthesizer class (`ttsframe.models.registry.FAMILIES`), its stage options and its sampling
options: VALL-E `ar_stage`, `nar_stage` + `SamplingOptions` fields; MELLE `model_stage`,
`vocoder_stage` + `MelleSamplingOptions` fields. Common: `checkpoint` (best | last),
`max_prompt_seconds`, `split`, `max_items`, `batch_size`, `device`. Mel families take their
vocoder from the recipe's `train_vocoder` stage (`vocoder_stage`; see `stage_vocoder`).

Writes under `synth/<split>/`: `<id>.wav` (atomically), `items.jsonl` (one row per item: id,
text, speaker, prompt_id, prompt_text, prompt_audio, reference_audio, synth_audio,
seconds_generated, seconds_compute, length_ratio (seconds generated / the recording's), rtf,
mel_distance_to_reference (`ttsframe.eval.mel_distance`);
`*_start` / `*_end` when the manifest has them; `part_seconds`: its share of each part of the
synthesizer's time, e.g. frontend, prompt, ar, nar, decode) and `summary.json` (counts, RTF overall and
per part, mean mel distance). Items are synthesized in fixed batches with seed `seed + batch number`, so a killed
run resumes (finished batches are skipped) with the same output as an uninterrupted one;
`settings.json` records the options, checkpoints and vocoder, and a run with other ones starts
over. The compute time of a batch is shared among its items in proportion to the audio they got.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from ttsframe.data.audio import load_audio, save_audio
from ttsframe.data.manifest import Utterance, read_manifest
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.mel_distance import mel_distance
from ttsframe.inference import SynthesisItem
from ttsframe.models.registry import FAMILIES, family as family_spec
from ttsframe.utils.atomic import read_jsonl, write_json, write_jsonl

OUTPUT_DIR = "synth"
DEPENDS_ON = ("data", "codec", "text", "model", "trainer", "vocoder")
SHARD_DIR = "shards"
GENERATOR_FILE = "generator.safetensors"  # what a train_vocoder stage exports (ttsframe.pipeline.train_vocoder)
# Options of every stage that loads the trained models, with their defaults (+ the family's
# CHECKPOINT_STAGES, and `vocoder_stage` for families with a vocoder).
COMMON_MODEL_OPTIONS = {"checkpoint": "best", "max_prompt_seconds": 3.0}
RUN_OPTIONS = {"split": "test", "max_items": None, "batch_size": 8, "device": "auto"}


def stage_family(cfg: DictConfig, ctx) -> type:
    """The synthesizer class of the stage: the family whose stage options (`ar_stage`,
    `model_stage`, ...) the stage names, else the run's `model.family`. Where families share
    option names (MELLE's and DiTAR's `model_stage`), the run's `model.family` decides when it
    is one of them, else the family whose default train stages the options name."""
    named = [family for family in FAMILIES
             if set(family_spec(family).synthesizer_class().CHECKPOINT_STAGES) & set(ctx.options)]
    if len(named) > 1:
        named = _shared_options_family(cfg, ctx, named)
    if len(named) > 1:
        raise ConfigError(f"stage {ctx.name}: options of several families ({', '.join(named)}) given together")
    if named:
        family = named[0]
    elif "model" in cfg and cfg.model.get("family"):
        family = cfg.model.family
    else:
        known = "; ".join(f"{f}: {', '.join(family_spec(f).synthesizer_class().CHECKPOINT_STAGES)}"
                          for f in FAMILIES)
        raise ConfigError(f"stage {ctx.name}: which model family? set `model.family` or the stage options of "
                          f"one ({known})")
    cls = family_spec(family).synthesizer_class()
    if "model" in cfg and cfg.model.get("family") not in (None, family):
        raise ConfigError(f"stage {ctx.name}: its options are {family}'s, but model.family is {cfg.model.family}")
    return cls


def _shared_options_family(cfg: DictConfig, ctx, named: list[str]) -> list[str]:
    """Of families whose stage options the stage names, the run's model family, else those whose
    default train stages (`CHECKPOINT_STAGES` values) the options name."""
    run_family = cfg.model.get("family") if "model" in cfg else None
    if run_family in named:
        return [run_family]
    defaults = [family for family in named if any(ctx.options.get(key) == stage for key, stage in
                                                  family_spec(family).synthesizer_class().CHECKPOINT_STAGES.items())]
    return defaults or named


def reads(cfg: DictConfig, ctx) -> tuple[str, ...]:
    """The folders under exp_dir a stage that loads the trained models reads: the manifests, the
    shards, the family's train stages (its options, or their defaults) and its vocoder stage."""
    cls = stage_family(cfg, ctx)
    options = {**model_options(cls), **ctx.options}
    folders = ["data", SHARD_DIR, *(options[k] for k in cls.CHECKPOINT_STAGES)]
    if cls.USES_VOCODER:  # the vocoder stage: named, else the recipe's train_vocoder stage (see stage_vocoder)
        folders += [options.get("vocoder_stage") or next((s.name for s in cfg.get("stages") or []
                                                          if s.kind == "train_vocoder"), None)]
    return tuple(f for f in folders if f)


def model_options(cls: type) -> dict:
    """The options (with defaults) of a stage that loads the trained models of `cls`'s family."""
    vocoder = {"vocoder_stage": None} if cls.USES_VOCODER else {}
    return {**cls.CHECKPOINT_STAGES, **vocoder, **COMMON_MODEL_OPTIONS}


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


def load_synthesizer(cfg: DictConfig, exp_dir: Path, options: dict, device: str, cls: type,
                     chosen: dict[str, Path] | None = None):
    """The synthesizer of the run's trained stages (the family's `CHECKPOINT_STAGES` options),
    and {stage name: file} it was loaded from (the vocoder stage's generator among them).
    `chosen`: {stage name: checkpoint file} instead of the stage's `options["checkpoint"]`."""
    files = {options[k]: checkpoint_file(exp_dir, options[k], options["checkpoint"]) for k in cls.CHECKPOINT_STAGES
             if options[k] not in (chosen or {})}
    files.update(chosen or {})
    extra = {}
    if cls.USES_VOCODER:
        extra["vocoder"], stage, path = stage_vocoder(cfg, exp_dir, options.get("vocoder_stage"))
        if path is not None:
            files[stage] = path
    synth = cls.from_checkpoints(*[files[options[k]] for k in cls.CHECKPOINT_STAGES], exp_dir / SHARD_DIR, cfg.codec,
                                 cfg.text, device=device, max_prompt_seconds=options["max_prompt_seconds"], **extra)
    return synth, files


def stage_vocoder(cfg: DictConfig, exp_dir: Path, stage: str | None):
    """(vocoder, vocoder stage name or None, generator file or None) of a mel family's run.

    With a vocoder stage (`stage`, default the recipe's stage of kind `train_vocoder`): the
    vocoder that stage trained (`<stage>/generator.safetensors`), or, when its `vocoder` config
    trains nothing (griffin_lim, a `checkpoint`, `max_steps: 0`), the vocoder that config names,
    as that stage validated it. Without one: the `vocoder` config group if the run has one, else
    the mel codec's own `vocoder` (Griffin-Lim by default).
    """
    from omegaconf import OmegaConf

    from ttsframe.codecs.mel import MelConfig
    from ttsframe.codecs.mel_codec import default_vocoder
    from ttsframe.vocoders.config import build_from_config
    from ttsframe.vocoders.hifigan import HifiGanVocoder

    mel = MelConfig.from_any(OmegaConf.to_container(cfg.codec.mel, resolve=True)) if "mel" in cfg.codec else MelConfig()
    if stage is None:
        stage = next((s.name for s in cfg.get("stages") or [] if s.kind == "train_vocoder"), None)
    if stage is None:
        if "vocoder" in cfg:
            return build_from_config(cfg.vocoder, mel), None, None
        codec = cfg.codec
        return default_vocoder(codec.get("vocoder", "griffin_lim"), mel, codec.get("griffin_lim_iters", 60)), None, None
    if "vocoder" not in cfg:
        raise ConfigError(f"vocoder stage `{stage}`: the run has no `vocoder` config")
    v = cfg.vocoder
    if v.name == "griffin_lim" or v.checkpoint is not None or v.max_steps == 0:
        return build_from_config(v, mel), None, None
    path = exp_dir / stage / GENERATOR_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: run the `{stage}` stage first")
    vocoder = HifiGanVocoder.from_file(path)
    vocoder.check_features(mel)
    return vocoder, stage, path


def pair_prompts(utterances: list[Utterance], max_seconds: float | None = None
                 ) -> tuple[list[tuple[Utterance, Utterance]], list[str]]:
    """(target, prompt) pairs: the prompt is the speaker's next utterance in id order, cyclically,
    that lasts at most `max_seconds` (said whole, so its transcript is exact), else the next one
    (which synthesis cuts, estimating where its transcript ends).

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
        queues.append([(u, _prompt_for(group, i, max_seconds)) for i, u in enumerate(group)])
    pairs = [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
    return pairs, alone


def _prompt_for(group: list[Utterance], index: int, max_seconds: float | None) -> Utterance:
    """The first utterance after `group[index]` (cyclically, itself excluded) no longer than
    `max_seconds`; the next one when none is (or `max_seconds` is None)."""
    others = group[index + 1:] + group[:index]
    return next((u for u in others if max_seconds is None or u.duration <= max_seconds), others[0])


def run(cfg: DictConfig, ctx) -> dict:
    cls = stage_family(cfg, ctx)
    sampling_fields = tuple(f.name for f in dataclasses.fields(cls.OPTIONS))  # defaults: the dataclass's
    options = stage_options(ctx, {**model_options(cls), **RUN_OPTIONS}, sampling_fields)
    manifest = ctx.exp_dir / "data" / f"{options['split']}.jsonl"
    if not manifest.is_file():
        raise UserError(f"{manifest} not found: run the prepare stage first")
    pairs, alone = pair_prompts(read_manifest(manifest), options["max_prompt_seconds"])
    if alone:
        print(f"synthesize: {len(alone)} speaker(s) with a single utterance have no prompt; left out")
    if options["max_items"] is not None:
        pairs = pairs[: int(options["max_items"])]
    try:
        sampling = cls.OPTIONS(**{k: options[k] for k in sampling_fields if k in options})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"stage {ctx.name}: {e}") from None
    seed = int(options.get("seed", cfg.seed))
    synth, checkpoints = load_synthesizer(cfg, ctx.exp_dir, options, options["device"], cls)
    out_dir = ctx.out_dir / options["split"]
    vocoder = synth.vocoder_description() if cls.USES_VOCODER else None
    rows = earlier_rows(out_dir, {**options, "seed": seed}, checkpoints, ctx.force, vocoder)
    rows = {t.id: rows[t.id] for t, _ in pairs if t.id in rows}
    size = max(1, int(options["batch_size"]))
    done_now = []
    progress = tqdm(total=len(pairs), desc=f"synthesize {options['split']}", unit="utt", mininterval=1.0)
    for number, start in enumerate(range(0, len(pairs), size)):
        batch = pairs[start: start + size]
        if all(t.id in rows and (out_dir / f"{t.id}.wav").is_file() for t, _ in batch):
            progress.update(len(batch))
            continue
        new = synthesize_batch(synth, batch, dataclasses.replace(sampling, seed=seed + number), out_dir)
        rows.update((row["id"], row) for row in new)
        done_now += new
        write_jsonl(out_dir / "items.jsonl", (rows[t.id] for t, _ in pairs if t.id in rows))
        progress.update(len(batch))
        progress.set_postfix(audio_s=round(sum(r["seconds_generated"] for r in done_now), 1))
    progress.close()
    summary = report(list(rows.values()), done_now, len(pairs), alone, options["split"])
    write_json(out_dir / "summary.json", {"family": cls.FAMILY, **summary})
    return summary


def earlier_rows(out_dir: Path, options: dict, checkpoints: dict[str, Path], force: bool,
                 vocoder: dict | None = None) -> dict[str, dict]:
    """{id: row} of an earlier run to resume, if it had the same options, checkpoints and
    vocoder (a description; None: the family has none); else {}.

    Records the current settings in `out_dir/settings.json`.
    """
    stamp = {"options": options, "checkpoints": {k: [str(p), p.stat().st_size, p.stat().st_mtime_ns]
                                                  for k, p in checkpoints.items()}}
    if vocoder is not None:
        stamp["vocoder"] = vocoder
    stamp = json.loads(json.dumps(stamp, default=str))
    settings, items = out_dir / "settings.json", out_dir / "items.jsonl"
    same = settings.is_file() and json.loads(settings.read_text(encoding="utf-8")) == stamp
    if items.is_file() and not same and not force:
        print(f"synthesize: options or checkpoints changed since {items} was written; synthesizing all again")
    write_json(settings, stamp)
    return {row["id"]: row for row in read_jsonl(items)} if same and not force and items.is_file() else {}


def prompt_item(target: Utterance, prompt: Utterance, rate: int) -> SynthesisItem:
    """What synthesis is asked for a (target, prompt) pair: the target's text in the voice of the
    prompt's audio (at `rate`) and transcript."""
    return SynthesisItem(target.text, load_audio(prompt.audio, rate, prompt.start, prompt.end)[0], rate, prompt.text)


def synthesize_batch(synth, batch: list[tuple[Utterance, Utterance]], sampling, out_dir: Path) -> list[dict]:
    """Synthesizes and saves one batch (sampling: the family's options); returns its items.jsonl rows."""
    rate = synth.sample_rate
    items = [prompt_item(target, prompt, rate) for target, prompt in batch]
    began = time.perf_counter()
    wavs = synth.synthesize(items, sampling)
    compute = time.perf_counter() - began
    parts = getattr(synth, "last_timings", {})
    total = sum(len(w) for w in wavs) / rate
    rows = []
    for (target, prompt), wav in zip(batch, wavs):
        path = out_dir / f"{target.id}.wav"
        save_audio(str(path), wav, rate)
        seconds = len(wav) / rate
        fraction = seconds / total if total > 0 else 1 / len(batch)
        share = compute * fraction
        rows.append({
            "id": target.id, "text": target.text, "speaker": target.speaker, "prompt_id": prompt.id,
            "prompt_text": prompt.text, "prompt_audio": prompt.audio, **_window("prompt", prompt),
            "reference_audio": target.audio, **_window("reference", target), "synth_audio": str(path),
            "seconds_generated": round(seconds, 3), "seconds_compute": round(share, 4),
            "length_ratio": round(seconds / target.duration, 3) if target.duration else None,
            "rtf": round(share / seconds, 4) if seconds > 0 else None,
            "part_seconds": {part: round(t * fraction, 4) for part, t in parts.items()},
            "mel_distance_to_reference": _rounded(mel_distance(wav, load_audio(target.audio, rate, target.start,
                                                                               target.end)[0], rate)),
        })
    return rows


def _window(prefix: str, u: Utterance) -> dict:
    return {f"{prefix}_{k}": getattr(u, k) for k in ("start", "end") if getattr(u, k) is not None}


def _rounded(value: float) -> float | None:
    return None if value != value else round(value, 4)  # nan (audio shorter than a frame): None


def report(rows: list[dict], done_now: list[dict], planned: int, alone: list[str], split: str) -> dict:
    """Prints and returns the counts, the real-time factor (of this run's items when any) and
    the mean mel distance to the references (of all items that have one)."""
    measured = done_now or rows
    generated = sum(r["seconds_generated"] for r in measured)
    compute = sum(r["seconds_compute"] for r in measured)
    rtf = round(compute / generated, 4) if generated > 0 else None
    part_rtf = parts_rtf(measured)
    distances = [r["mel_distance_to_reference"] for r in rows if r.get("mel_distance_to_reference") is not None]
    distance = round(sum(distances) / len(distances), 4) if distances else None
    print(f"synthesize: {split}: {len(rows)}/{planned} items ({len(done_now)} now), "
          f"{generated:.1f} s of audio in {compute:.1f} s: RTF {rtf}; mel distance to the references {distance}")
    return {"split": split, "items": len(rows), "synthesized_now": len(done_now), "no_prompt_speakers": len(alone),
            "seconds_generated": round(generated, 2), "seconds_compute": round(compute, 2), "rtf": rtf,
            "part_rtf": part_rtf, "mel_distance_to_reference": distance}


def parts_rtf(rows: list[dict]) -> dict[str, float]:
    """Real-time factor of each part of synthesis (frontend, prompt, ar, nar, decode, ...) over `rows`."""
    generated = sum(r.get("seconds_generated") or 0.0 for r in rows)
    totals: dict[str, float] = {}
    for row in rows:
        for part, seconds in (row.get("part_seconds") or {}).items():
            totals[part] = totals.get(part, 0.0) + seconds
    return {part: round(t / generated, 4) for part, t in totals.items()} if generated > 0 else {}
