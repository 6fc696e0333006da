"""The evaluation report: table values, escaping, links to files that exist, reused spectrograms,
and (where Chromium is installed) a headless browser that renders every image and player."""

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from ttsframe.data.audio import save_audio
from ttsframe.eval.report import write_report

RATE = 16000
NASTY = "Say <script>alert(1)</script> & \"quote\" now"


def tone(freq: float, seconds: float = 0.4, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def make_eval_dir(root: Path) -> tuple[Path, dict]:
    """An eval/<set> folder with two utterances' audio and its metrics (u2 has no resynthesis
    and its ground-truth file is missing)."""
    eval_dir = root / "exp" / "valle" / "eval" / "test"
    audio = {}
    for i, (item, kinds) in enumerate([("u1", ["prompt", "ground_truth", "resynthesis", "synthesis"]),
                                       ("u2", ["prompt", "synthesis"])]):
        audio[item] = {kind: f"audio/{item}.{kind}.wav" for kind in kinds}
        for j, kind in enumerate(kinds):
            save_audio(str(eval_dir / audio[item][kind]), tone(200.0 + 50 * j, seed=i), RATE)
    audio["u2"]["ground_truth"] = "audio/u2.ground_truth.wav"  # listed, never written
    metrics = {
        "set": "test", "recipe": "valle", "exp_dir": "exp/valle", "family": "valle",
        "created": "2026-11-25T22:00:00Z",
        "protocol": {"asr": {"backend": "faster_whisper", "model": "tiny.en"}, "text_normalization": "basic"},
        "skipped": {"utmos": "utmos package not installed"},
        "systems": ["ground_truth", "resynthesis", "synthesis"],
        "aggregates": {
            "ground_truth": {"items": 2, "wer": 0.31, "sim_to_prompt": 0.83},
            "resynthesis": {"items": 1, "wer": 0.37, "pesq": 2.1},
            "synthesis": {"items": 2, "wer": 1.07, "sim_to_prompt": 0.6, "pesq": None, "rtf": 1.69},
        },
        "by_speaker": {
            "spk": {"ground_truth": {"items": 2, "wer": 0.31}, "synthesis": {"items": 2, "wer": 1.07,
                                                                          "sim_to_prompt": 0.6,
                                                                          "length_ratio_median": 0.9}},
            "alicia": {"ground_truth": {"items": 1, "wer": 0.57}, "synthesis": {"items": 1, "wer": 1.5}},
        },
        "speed": {"synthesis_rtf": 1.69, "stages": {"prepare": 24.6, "tokenize": 98.5}, "pipeline_seconds": 1500.0},
        "items": [
            {"id": "u1", "text": NASTY, "speaker": "spk", "prompt_text": "hello",
             "audio": audio["u1"],
             "ground_truth": {"hypothesis": "say alert now", "wer": 0.0, "sim_to_prompt": 0.8},
             "resynthesis": {"hypothesis": "say alert", "wer": 0.25},
             "synthesis": {"hypothesis": "<b>bold</b>", "wer": 0.2, "sim_to_prompt": None}},
            {"id": "u2", "text": "second", "speaker": "spk", "prompt_text": "hi", "audio": audio["u2"],
             "synthesis": {"hypothesis": "second", "wer": 0.0}},
        ],
    }
    return eval_dir, metrics


class Page(HTMLParser):
    """Collects the page's tables (cell texts), text, audio and image sources, skipped-box text."""

    def __init__(self):
        super().__init__()
        self.tables, self.text, self.audio, self.images, self.skipped = [], [], [], [], []
        self.cell, self.skipped_depth = None, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "audio":
            self.audio.append(attrs)
        elif tag == "img":
            self.images.append(attrs)
        if tag == "div" and "skipped" in (attrs.get("class") or ""):
            self.skipped_depth = 1
        elif tag == "div" and self.skipped_depth:
            self.skipped_depth += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "div" and self.skipped_depth:
            self.skipped_depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)
        if self.skipped_depth:
            self.skipped.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    eval_dir, metrics = make_eval_dir(tmp_path_factory.mktemp("report"))
    path = write_report(eval_dir, metrics)
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return eval_dir, metrics, path, page


def test_aggregates_table_has_one_column_per_system_and_dashes_for_nulls(report):
    _, _, _, page = report
    header, *rows = next(t for t in page.tables if t[0][0] == "metric")
    assert header[:4] == ["metric", "ground_truth", "synthesis", "resynthesis"]
    by_metric = {row[0]: row[1:4] for row in rows}
    assert by_metric["wer ↓"] == ["0.310", "1.070", "0.370"]
    assert by_metric["sim_to_prompt ↑"] == ["0.830", "0.600", "-"]
    assert by_metric["pesq ↑"] == ["-", "-", "2.100"]  # null in synthesis, absent in ground truth
    assert by_metric["items"] == ["2", "2", "1"]
    assert [row[0] for row in rows] == ["wer ↓", "sim_to_prompt ↑", "pesq ↑", "rtf ↓", "items"]
    assert "word error rate" in rows[0][-1]  # the meaning column


def test_per_voice_table_has_a_row_per_voice(report):
    _, _, _, page = report
    header, *rows = next(t for t in page.tables if t[0][0] == "voice")
    assert header == ["voice", "items", "WER ground_truth", "WER synthesis", "SIM synthesis", "length ratio (median)"]
    assert rows == [["spk", "2", "0.310", "1.070", "0.600", "0.900"], ["alicia", "1", "0.570", "1.500", "-", "-"]]


def test_header_shows_skipped_reasons_protocol_and_speed(report):
    _, _, _, page = report
    skipped = " ".join(page.skipped)
    assert "utmos" in skipped and "utmos package not installed" in skipped
    text = " ".join(page.text)
    assert "backend=faster_whisper, model=tiny.en" in text
    assert "1 min 38 s" in text and "25 min 0 s" in text  # tokenize stage, pipeline_seconds


def test_text_is_escaped(report):
    _, _, path, page = report
    raw = path.read_text(encoding="utf-8")
    assert "<script" not in raw and "<b>bold</b>" not in raw
    text = "".join(page.text)
    assert NASTY in text and "<b>bold</b>" in text  # shown literally


def test_item_tables_show_hypotheses_and_per_utterance_metrics(report):
    _, _, _, page = report
    u1 = next(t for t in page.tables if t[0][:2] == ["system", "ASR hypothesis"])
    assert u1[0] == ["system", "ASR hypothesis", "wer ↓", "sim_to_prompt ↑"]
    assert u1[1:] == [["ground_truth", "say alert now", "0.000", "0.800"],
                      ["synthesis", "<b>bold</b>", "0.200", "-"],
                      ["resynthesis", "say alert", "0.250", "-"]]


def test_every_player_and_image_points_at_an_existing_file(report):
    eval_dir, _, _, page = report
    assert len(page.audio) == 6  # u1: 4, u2: prompt + synthesis (its ground truth is missing)
    assert len(page.images) == 6
    for attrs in page.audio:
        assert attrs["preload"] == "none" and "controls" in attrs
        assert (eval_dir / unquote(attrs["src"])).is_file()
    for attrs in page.images:
        assert attrs["src"].startswith("spectrograms/") and attrs["loading"] == "lazy" and attrs["alt"]
        assert (eval_dir / unquote(attrs["src"])).is_file()
    assert "missing: audio/u2.ground_truth.wav" in "".join(page.text)


def test_spectrograms_are_reused_until_their_wav_changes(report):
    eval_dir, metrics, _, _ = report
    png, wav = eval_dir / "spectrograms/u1.synthesis.png", eval_dir / "audio/u1.synthesis.wav"
    old = png.stat().st_mtime - 100
    os.utime(png, (old, old))
    os.utime(wav, (old - 1, old - 1))
    write_report(eval_dir, metrics)
    assert png.stat().st_mtime == old  # newer than its wav: kept
    os.utime(wav, (old + 50, old + 50))
    write_report(eval_dir, metrics)
    assert png.stat().st_mtime > old + 50  # wav changed: drawn again


# Run in the page once it has loaded: opens every block, loads every lazy image and every
# player's metadata, and returns what rendered.
CHECK_SCRIPT = """async () => {
  const settle = (el, ok) => new Promise(r => { el.addEventListener(ok, r, {once: true});
                                                el.addEventListener("error", r, {once: true}); });
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const images = [...document.images], players = [...document.querySelectorAll("audio")];
  const waits = images.filter(i => !i.complete).map(i => settle(i, "load"));
  images.forEach(i => { i.loading = "eager"; });
  players.forEach(a => { if (a.readyState < 1) waits.push(settle(a, "loadedmetadata"));
                         a.preload = "metadata"; a.load(); });
  await Promise.race([Promise.all(waits), new Promise(r => setTimeout(r, 60000))]);  // a stuck one counts as failed
  return {images: images.length, rendered: images.filter(i => i.complete && i.naturalWidth > 0).length,
          players: players.length, playable: players.filter(a => a.readyState >= 1 && a.duration > 0).length};
}"""


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome",
                                                "google-chrome-stable"))), None)


def test_headless_chromium_renders_every_image_and_player(report):
    """Debian's chromium driven by Playwright: a real wait on the page, not a virtual-time budget
    (which dumped the page before the players had loaded on a busy machine)."""
    browser_path = chromium()
    if browser_path is None:
        pytest.skip("chromium not installed: scripts/install_chromium.sh installs it (root + apt)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[demo]'")
    _, _, path, page = report
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, headless=True,
                                     args=["--allow-file-access-from-files",
                                           *(["--no-sandbox"] if os.geteuid() == 0 else [])])
        try:
            tab = browser.new_page()
            tab.set_default_timeout(60_000)
            tab.goto(path.as_uri(), wait_until="load")
            seen = tab.evaluate(CHECK_SCRIPT)
        finally:
            browser.close()
    assert seen == {"images": len(page.images), "rendered": len(page.images),
                    "players": len(page.audio), "playable": len(page.audio)}


def test_training_curves_are_drawn_per_stage_or_their_absence_said(tmp_path):
    eval_dir, metrics = make_eval_dir(tmp_path / "run")
    curves = {"train_ar": {"train": [{"step": s, "train/loss": 5.0 - s / 100, "train/accuracy": s / 400}
                                     for s in range(10, 310, 10)],
                           "val": [{"step": 150, "val/loss": 4.0}, {"step": 300, "val/loss": 3.5, "val/accuracy": 0.6}]},
              "train_nar": {"train": [], "val": []}}
    text = write_report(eval_dir, metrics, curves=curves).read_text(encoding="utf-8")
    training = text[text.index("<h2>Training</h2>"): text.index("<h2>Speed</h2>")]
    assert training.count("<svg") == 2  # train_ar: loss and accuracy; train_nar logged nothing to draw
    assert "train_ar: loss" in training and "validation (loss)" in training and "train (accuracy)" in training
    loss_chart = training[: training.index("train_ar: accuracy")]
    assert loss_chart.count("<polyline") == 2 and "300 steps" in loss_chart
    points = re.search(r'<polyline[^>]*points="([^"]+)"', loss_chart).group(1).split()
    assert len(points) == 30  # every logged train step, in step order
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys)  # the falling loss goes down the chart (SVG y grows downwards)
    empty = write_report(eval_dir, metrics).read_text(encoding="utf-8")
    assert "no training curves" in empty
