"""The evaluation report: `eval/<set>/report.html` from the stage's metrics.json.

One self-contained page (inline CSS, no script, relative links, opens from file://): a header
with the protocol and the skipped metrics, the aggregates with one column per system (ground
truth beside synthesis), the training curves of the run's train stages (inline SVG), the speed, then one block per utterance with its text, the ASR
hypotheses and metrics per system, and a player plus a log-mel spectrogram for each recording.
Spectrograms are written to `spectrograms/` beside the page; images newer than their wav are kept.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from urllib.parse import quote

# Aggregate columns in this order; any other metric follows alphabetically (see `ordered`).
ORDER = ("wer", "cer", "sim_to_prompt", "sim_to_reference", "mcd", "log_f0_rmse", "pesq", "stoi",
         "dnsmos_ovrl", "utmos", "rtf", "items")
# Metric -> (direction, what it measures). "↓": lower is better, "↑": higher is better, "": neither.
METRICS = {
    "wer": ("↓", "word error rate of the ASR transcript against the text (fraction: 0.05 = 5 %)"),
    "cer": ("↓", "character error rate of the ASR transcript against the text (fraction)"),
    "sim_to_prompt": ("↑", "speaker similarity to the prompt: cosine of speaker embeddings, -1..1"),
    "sim_to_reference": ("↑", "speaker similarity to the ground-truth recording: cosine, -1..1"),
    "mcd": ("↓", "mel cepstral distortion to the ground truth after time alignment, dB"),
    "log_f0_rmse": ("↓", "RMS error of log F0 against the ground truth on voiced frames (0.1 = ~10 %)"),
    "pesq": ("↑", "PESQ perceptual quality against the ground truth, 1..4.5"),
    "stoi": ("↑", "STOI intelligibility against the ground truth, 0..1"),
    "dnsmos_ovrl": ("↑", "DNSMOS overall quality, predicted MOS 1..5 (no reference needed)"),
    "dnsmos_sig": ("↑", "DNSMOS speech signal quality, predicted MOS 1..5"),
    "dnsmos_bak": ("↑", "DNSMOS background noise quality, predicted MOS 1..5"),
    "utmos": ("↑", "UTMOS naturalness, predicted MOS 1..5 (no reference needed)"),
    "mel_distance": ("↓", "mean |log-mel difference| to the ground truth after DTW (natural log)"),
    "rtf": ("↓", "real-time factor: seconds of compute per second of audio (< 1: faster than real time)"),
    "items": ("", "utterances scored"),
}
# Columns and players: ground truth beside synthesis, the codec round trip after; others follow.
SYSTEM_ORDER = ("ground_truth", "synthesis", "resynthesis")
AUDIO_ORDER = ("prompt", "ground_truth", "synthesis", "resynthesis")
OPEN_ITEMS = 10  # utterance blocks shown open; the rest are one line each until clicked
IMAGE_HEIGHT = 120  # px on the page; one pixel per analysis frame across

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222 }
h1 { font-size: 1.5em } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc }
table { border-collapse: collapse; margin: .5em 0 } td, th { padding: .2em .6em; border-bottom: 1px solid #e4e4e4 }
th { text-align: left; background: #f4f4f4 } td.num { text-align: right; font-variant-numeric: tabular-nums }
td.note, .muted { color: #666; font-size: .9em }
.skipped { background: #fff4d6; border: 2px solid #e0a800; padding: .6em 1em; margin: 1em 0 }
details.item { border: 1px solid #ddd; border-radius: 4px; margin: .5em 0; padding: .3em .8em }
details.item > summary { cursor: pointer } .text { font-size: 1.05em }
.media { display: grid; grid-template-columns: 8em 260px 1fr; gap: .4em .8em; align-items: center }
.media audio { width: 100% } .spec { overflow-x: auto } .spec img { display: block; max-width: none }
.curves { display: flex; flex-wrap: wrap; gap: .6em }
"""


def write_report(eval_dir: Path, metrics: dict, sample_rate_hint: int | None = None,
                 curves: dict[str, dict] | None = None) -> Path:
    """Writes `eval_dir/report.html` and the spectrograms it shows.

    Args:
        eval_dir: the folder of metrics.json; the items' audio paths are relative to it.
        metrics: the content of metrics.json.
        sample_rate_hint: resample every recording to this rate before its spectrogram, so that
            all images share one time scale; None analyses each file at its own rate.
        curves: {train stage: its curves.json} (`ttsframe.training.curves`), drawn as charts.

    Returns:
        The path of the page.
    """
    from ttsframe.utils.atomic import write_text

    eval_dir = Path(eval_dir)
    images = write_spectrograms(eval_dir, metrics.get("items") or [], sample_rate_hint)
    path = eval_dir / "report.html"
    write_text(path, render_page(metrics, images, eval_dir, curves or {}))
    return path


def write_spectrograms(eval_dir: Path, items: list[dict], sample_rate: int | None) -> dict[str, tuple[str, int]]:
    """Audio path (as the items give it) -> (its spectrogram PNG relative to eval_dir, frames).

    Files that are missing or unreadable get no image. Images newer than their wav are reused.
    """
    from PIL import Image

    images = {}
    for item in items:
        for audio in (item.get("audio") or {}).values():
            if not audio or audio in images or not (eval_dir / audio).is_file():
                continue
            image = spectrogram_path(audio)
            wav, png = eval_dir / audio, eval_dir / image
            fresh = png.is_file() and png.stat().st_mtime >= wav.stat().st_mtime
            if fresh or draw_spectrogram(wav, png, sample_rate):
                with Image.open(png) as opened:
                    images[audio] = (image, opened.width)
    return images


def spectrogram_path(audio: str) -> str:
    """"audio/u1.synthesis.wav" -> "spectrograms/u1.synthesis.png" (sub-folders kept)."""
    parts = [p for p in Path(audio).with_suffix(".png").parts if p not in ("/", "..", ".")]
    if len(parts) > 1 and parts[0] == "audio":
        parts = parts[1:]
    return "/".join(["spectrograms", *parts])


def draw_spectrogram(wav_path: Path, png_path: Path, sample_rate: int | None) -> bool:
    """Writes the log-mel image of one file; False when it is unreadable or shorter than a frame."""
    from ttsframe.data.audio import load_audio
    from ttsframe.errors import AudioError
    from ttsframe.eval.mel_distance import analysis_config, log_mel
    from ttsframe.training.spectrogram_image import save_png, spectrogram_rgb

    try:
        wav, rate = load_audio(str(wav_path), sample_rate)
    except AudioError:
        return False
    frames = log_mel(wav, analysis_config(rate))  # (T, n_mels)
    if not len(frames):
        return False
    save_png(png_path, spectrogram_rgb(frames.T))
    return True


def render_page(metrics: dict, images: dict[str, tuple[str, int]], eval_dir: Path,
                curves: dict[str, dict] | None = None) -> str:
    title = f"{metrics.get('recipe', '?')} / {metrics.get('set', '?')}: evaluation"
    body = [f"<h1>{escape(title)}</h1>", header(metrics), "<h2>Aggregates</h2>", aggregates_table(metrics),
            *(["<h2>Per voice</h2>", speakers_table(metrics)] if metrics.get("by_speaker") else []),
            "<h2>Training</h2>", training_section(curves or {}),
            "<h2>Speed</h2>", speed_section(metrics.get("speed") or {}),
            "<h2>Utterances</h2>", items_section(metrics, images, eval_dir)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def header(metrics: dict) -> str:
    rows = [(key, metrics.get(key)) for key in ("recipe", "set", "family", "exp_dir", "created")]
    rows.append(("items", len(metrics.get("items") or [])))
    parts = [key_value_table(rows)]
    skipped = metrics.get("skipped") or {}
    if skipped:
        reasons = "".join(f"<li><b>{escape(str(k))}</b>: {escape(str(v))}</li>" for k, v in skipped.items())
        parts.append(f'<div class="skipped"><b>Metrics not computed</b><ul>{reasons}</ul></div>')
    protocol = metrics.get("protocol") or {}
    if protocol:
        parts.append("<h2>Protocol</h2>" + key_value_table([(k, describe(v)) for k, v in protocol.items()]))
    return "\n".join(parts)


def aggregates_table(metrics: dict) -> str:
    aggregates = metrics.get("aggregates") or {}
    systems = ordered_systems([*(metrics.get("systems") or []), *aggregates])
    names = ordered({name for system in systems for name in aggregates.get(system) or {}})
    head = "".join(f"<th>{escape(s)}</th>" for s in systems)
    rows = [f"<tr><th>metric</th>{head}<th>what it measures</th></tr>"]
    for name in names:
        cells = "".join(number_cell((aggregates.get(s) or {}).get(name)) for s in systems)
        rows.append(f"<tr><td>{metric_label(name)}</td>{cells}<td class=\"note\">{escape(meaning(name))}</td></tr>")
    return f"<table>{''.join(rows)}</table><p class=\"muted\">↓ lower is better, ↑ higher is better; " \
           "- = not computed. Read a synthesis score against the ground-truth column: that is what the " \
           "ASR and the speaker encoder make of real speech.</p>"


def speakers_table(metrics: dict) -> str:
    """One row per voice: its item count, the WER of every system, and the synthesis's SIM and
    length ratio, so a voice the ASR misreads in its recordings too stands out."""
    by_speaker = metrics.get("by_speaker") or {}
    systems = ordered_systems([s for per_system in by_speaker.values() for s in per_system])
    head = "".join(f"<th>WER {escape(s)}</th>" for s in systems)
    rows = [f"<tr><th>voice</th><th>items</th>{head}<th>SIM synthesis</th><th>length ratio (median)</th></tr>"]
    for speaker, per_system in by_speaker.items():
        synthesis = per_system.get("synthesis") or {}
        cells = "".join(number_cell((per_system.get(s) or {}).get("wer")) for s in systems)
        rows.append(f"<tr><td>{escape(speaker)}</td>{number_cell(synthesis.get('items'))}{cells}"
                    f"{number_cell(synthesis.get('sim_to_prompt'))}{number_cell(synthesis.get('length_ratio_median'))}</tr>")
    return f"<table>{''.join(rows)}</table>"


def training_section(curves: dict[str, dict]) -> str:
    """Loss and accuracy against the step of each train stage (inline SVG), or why there are none."""
    from ttsframe.eval.curves_svg import stage_charts

    charts = [svg for stage, data in curves.items() for svg in stage_charts(stage, data)]
    if not charts:
        return '<p class="muted">no training curves (the train stages wrote no curves.json)</p>'
    return '<div class="curves">' + "".join(charts) + "</div>"


def speed_section(speed: dict) -> str:
    rows = [(key, value) for key, value in speed.items() if not isinstance(value, dict)]
    rows = [(key, duration(v) if key.endswith("seconds") else v) for key, v in rows]
    parts = [key_value_table(rows)] if rows else ['<p class="muted">no timings recorded</p>']
    synthesis_parts = speed.get("synthesis_parts_rtf") or {}
    if synthesis_parts:
        parts.append(key_value_table([(f"synthesis RTF: {name}", rtf) for name, rtf in synthesis_parts.items()]))
    stages = speed.get("stages") or {}
    if stages:
        parts.append(key_value_table([(f"stage {name}", duration(s)) for name, s in stages.items()]))
    return "\n".join(parts)


def items_section(metrics: dict, images: dict[str, tuple[str, int]], eval_dir: Path) -> str:
    items = metrics.get("items") or []
    if not items:
        return '<p class="muted">no utterances</p>'
    note = f"{len(items)} utterances" + (f"; the first {OPEN_ITEMS} are open, click a line for the others"
                                         if len(items) > OPEN_ITEMS else "")
    note = f'<p class="muted">{note}.</p>'
    return note + "\n".join(item_block(item, i < OPEN_ITEMS, images, eval_dir) for i, item in enumerate(items))


def item_block(item: dict, is_open: bool, images: dict[str, tuple[str, int]], eval_dir: Path) -> str:
    systems = ordered_systems([key for key, value in item.items() if isinstance(value, dict) and key != "audio"])
    synthesis_wer = (item.get("synthesis") or {}).get("wer")
    summary = f"<b>{escape(str(item.get('id', '?')))}</b> · {escape(str(item.get('speaker', '')))} · " \
              f"synthesis WER {escape(fmt(synthesis_wer))} · {escape(shorten(str(item.get('text', '')), 90))}"
    parts = [f"<p class=\"text\"><b>Text:</b> {escape(str(item.get('text', '')))}</p>"]
    if item.get("prompt_text"):
        parts.append(f"<p class=\"muted\"><b>Prompt text:</b> {escape(str(item['prompt_text']))}</p>")
    if systems:
        parts.append(item_table(item, systems))
    parts.append(media_grid(item, images, eval_dir))
    return f"<details class=\"item\"{' open' if is_open else ''}><summary>{summary}</summary>{''.join(parts)}</details>"


def item_table(item: dict, systems: list[str]) -> str:
    names = ordered({key for s in systems for key in item[s] if key != "hypothesis"})
    head = "".join(f"<th>{metric_label(n)}</th>" for n in names)
    rows = [f"<tr><th>system</th><th>ASR hypothesis</th>{head}</tr>"]
    for s in systems:
        cells = "".join(number_cell(item[s].get(n)) for n in names)
        rows.append(f"<tr><td>{escape(s)}</td><td>{escape(str(item[s].get('hypothesis') or '-'))}</td>{cells}</tr>")
    return f"<table>{''.join(rows)}</table>"


def media_grid(item: dict, images: dict[str, tuple[str, int]], eval_dir: Path) -> str:
    audio = item.get("audio") or {}
    kinds = [k for k in AUDIO_ORDER if audio.get(k)] + [k for k in audio if k not in AUDIO_ORDER and audio[k]]
    cells = []
    for kind in kinds:
        path = audio[kind]
        if (eval_dir / path).is_file():
            player = f'<audio controls preload="none" src="{escape(quote(path))}"></audio>'
        else:
            player = f'<span class="muted">missing: {escape(path)}</span>'
        picture = ""
        if path in images:
            image, width = images[path]
            alt = escape(f"log-mel spectrogram of {item.get('id', '?')} ({kind})")
            picture = f'<img src="{escape(quote(image))}" alt="{alt}" width="{width}" height="{IMAGE_HEIGHT}" ' \
                      'loading="lazy">'
        cells.append(f"<div>{escape(kind)}</div><div>{player}</div><div class=\"spec\">{picture}</div>")
    return f"<div class=\"media\">{''.join(cells)}</div>" if cells else ""


def ordered(names) -> list[str]:
    """Metric names in report order: ORDER first, then the others alphabetically."""
    names = set(names)
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def ordered_systems(systems: list[str]) -> list[str]:
    unique = list(dict.fromkeys(systems))
    return [s for s in SYSTEM_ORDER if s in unique] + [s for s in unique if s not in SYSTEM_ORDER]


def metric_label(name: str) -> str:
    direction, description = METRICS.get(name, ("", ""))
    return f'<span title="{escape(description)}">{escape(name)}{" " + direction if direction else ""}</span>'


def meaning(name: str) -> str:
    return METRICS.get(name, ("", ""))[1]


def fmt(value) -> str:
    """A metric value as text: "-" for missing or NaN, 3 decimals below 100, 1 above."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def number_cell(value) -> str:
    return f'<td class="num">{escape(fmt(value))}</td>'


def key_value_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def describe(value, prefix: str = "") -> str:
    """A nested protocol entry as "key=value, sub.key=value"."""
    if not isinstance(value, dict):
        return f"{prefix}{fmt(value)}" if not prefix else f"{prefix[:-1]}={fmt(value)}"
    return ", ".join(describe(v, f"{prefix}{k}.") for k, v in value.items())


def duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or math.isnan(seconds):
        return fmt(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
