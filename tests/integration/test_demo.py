"""The web demo in headless Chromium: releases of a tiny random MELLE and a tiny random CosyVoice
(char frontend, Griffin-Lim) served side by side on a free local port; text + uploaded prompt +
transcript give an <audio> player that plays and a spectrogram <img> in each column, the CosyVoice
column streaming (its live player, where ffmpeg is on PATH, and the first-audio latency); bad
input (empty text, a symbol the vocabulary lacks) answers in the page; the experiment's test
prompt becomes an example; the page requests nothing from any server but the demo's (no CDN).
A screenshot is kept under tmp_path (and in tests/artifacts/demo.png when TTSFRAME_KEEP_ARTIFACTS
is set)."""

import dataclasses
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.models.cosyvoice.flow import CosyVoiceFlow
from ttsframe.models.cosyvoice.flow_presets import flow_tiny
from ttsframe.models.cosyvoice.lm import SpeechLM
from ttsframe.models.cosyvoice.presets import lm_tiny
from ttsframe.models.cosyvoice.synthesizer import CosyVoiceSynthesizer
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import melle_tiny
from ttsframe.models.melle.synthesizer import MelleSynthesizer
from ttsframe.release import write_release
from ttsframe.text import CharFrontend, Vocabulary
from ttsframe.tokenizers.s3_asr.features import AsrFeatureConfig
from ttsframe.tokenizers.s3_asr.io import load_tokenizer, save_tokenizer
from ttsframe.tokenizers.s3_asr.model import S3AsrConfig, S3AsrModel
from ttsframe.vocoders.griffin_lim import GriffinLim

pytestmark = [pytest.mark.integration,  # and torch on the CosyVoice flow's speaker layer of width 0:
              pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")]

RATE, M = 8000, 20
MEL = MelConfig(sample_rate=RATE, n_fft=256, hop_length=64, win_length=256, n_mels=M, fmax=4000.0)
TEXT, TRANSCRIPT = "hello world", "a quick voice prompt"
EXAMPLE = ("the test, a world.", "a quick voice prompt")
TIMEOUT_MS = 30_000


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(reason: str):
    if in_ci():
        pytest.fail(f"CI is set, but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def harmonic_tone(seconds: float = 2.0, rate: int = 16000) -> np.ndarray:
    """(T,) float32: 140 Hz and four overtones with a slow vibrato, the prompt's "voice"."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * 140 * t + 0.3 * np.sin(2 * np.pi * 5 * t)
    return (sum(0.25 / k * np.sin(k * phase) for k in range(1, 6)) * np.hanning(len(t)) ** 0.1).astype(np.float32)


def write_tiny_release(exp: Path, prompt: Path) -> Path:
    """exp/release (a seeded random MELLE whose stop head never fires) and exp/synth/test/items.jsonl
    (one test request, the page's example)."""
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["hello world.", "a quick voice prompt, the test"]), frontend.settings())
    torch.manual_seed(0)
    model = Melle(melle_tiny(len(vocab), n_mels=M))
    model.set_mel_stats(torch.full((M,), -4.0), torch.full((M,), 1.5))
    model.stop_head.set_constant(-50.0)  # every request runs to its frame budget
    synth = MelleSynthesizer(model, MEL, frontend, vocab, GriffinLim(MEL, n_iter=4), max_prompt_seconds=3.0,
                             text_config={"frontend": "chars", "language": "en-us"})
    release = write_release(exp / "release", synth, {"recipe": "demo_toy", "data": {"corpus": "builtin"}})
    (exp / "synth" / "test").mkdir(parents=True)
    row = {"id": "u1", "text": EXAMPLE[0], "prompt_audio": str(prompt), "prompt_text": EXAMPLE[1]}
    (exp / "synth" / "test" / "items.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return release


def write_tiny_cosyvoice(folder: Path) -> Path:
    """folder/release: a seeded random CosyVoice at the same rate (no speaker embedding) whose LM
    never emits eos."""
    torch.manual_seed(0)
    asr = S3AsrModel(S3AsrConfig(n_symbols=8, d_model=32, n_heads=2, layers_before=1, layers_after=1, ffn_dim=64,
                                 subsample=4, fsq_levels=(3, 3), dropout=0.0))
    save_tokenizer(folder / "tokenizer", asr, tuple("abcdefg"), AsrFeatureConfig(), [])
    tokenizer = load_tokenizer(folder / "tokenizer")
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["hello world.", "a quick voice prompt, the test"]), frontend.settings())
    flow = CosyVoiceFlow(dataclasses.replace(flow_tiny(tokenizer.vocab_size, n_mels=M), spk_dim=0,
                                             mel_rate=RATE / MEL.hop_length))
    synth = CosyVoiceSynthesizer(SpeechLM(lm_tiny(len(vocab), tokenizer.vocab_size, spk_dim=0)), flow, tokenizer, None,
                                 MEL, frontend, vocab, GriffinLim(MEL, n_iter=4), max_prompt_seconds=3.0,
                                 text_config={"frontend": "chars", "language": "en-us"})
    with torch.no_grad():
        synth.lm.head.bias[synth.lm.config.eos] = -50.0  # every request runs to its token budget: many chunks
    return write_release(folder / "release", synth, {"recipe": "demo_toy_cosyvoice", "data": {"corpus": "builtin"}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser_path() -> str:
    """Debian's chromium, driven by Playwright's Python package (`playwright install` is not used)."""
    path = chromium()
    if path is None:
        need("no chromium binary: scripts/install_chromium.sh installs Debian's chromium (root + apt)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need("playwright is not installed: pip install -e '.[demo]'")
    return path


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The demo of the tiny releases on a free port (background thread); yields (url, prompt wav)."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        need("gradio is not installed: pip install -e '.[demo]'")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from ttsframe.demo.app import build_app, launch
    from ttsframe.demo.releases import load_releases

    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, harmonic_tone(), 16000)
    releases = [write_tiny_release(tmp_path / "exp", prompt), write_tiny_cosyvoice(tmp_path / "cosyvoice")]

    def no_asr(wav, rate):
        raise AssertionError("the test types the transcript: the ASR must not run")

    port = free_port()
    demo = launch(build_app(load_releases(releases), transcribe=no_asr), "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", prompt
    finally:
        demo.close()


def is_local(url: str, server: str) -> bool:
    """Whether `url` is under `server` (http://127.0.0.1:PORT/) or the page's own data: / blob: URL."""
    return url.removeprefix("blob:").startswith((server, "data:"))


def assert_local(urls: list[str], server: str) -> None:
    """Fails listing the URLs of `urls` that are not local (`is_local`), once each."""
    outside = sorted({url for url in urls if not is_local(url, server)})
    assert not outside, f"the page requested URLs outside {server}: {outside}"


PLAYABLE = """async (selector) => {
  const a = document.querySelector(selector);
  if (a.readyState < 1) await new Promise((ok, fail) => {
    a.addEventListener("loadedmetadata", ok, {once: true}); a.addEventListener("error", fail, {once: true});
    a.load(); });
  return {src: a.getAttribute("src"), duration: a.duration};
}"""


def test_page_synthesizes_and_answers_bad_input(browser_path, server, tmp_path):
    from playwright.sync_api import sync_playwright

    from ttsframe.demo.streaming import live_player

    url, prompt = server
    shot = tmp_path / "demo.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, headless=True,
                                     args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            asked = []  # every URL requested in the page's browser context, before the route decides
            page.context.on("request", lambda request: asked.append(request.url))
            page.route("**/*", lambda route: route.continue_() if is_local(route.request.url, url)
                       else route.abort())  # the test never needs the network
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text(EXAMPLE[0]).first.wait_for()  # the experiment's test prompt is an example
            assert_local(asked, url)

            page.locator("#demo-text textarea").fill(TEXT)
            page.locator("#demo-prompt input[type=file]").set_input_files(str(prompt))
            page.locator("#demo-prompt #duration").get_by_text("0:02").wait_for()  # uploaded: a 2 s waveform
            page.locator("#demo-transcript textarea").fill(TRANSCRIPT)
            page.locator("#demo-run").click()
            page.locator("#demo-stats-1").get_by_text("Streaming:").wait_for()  # CosyVoice's chunks reach the page

            page.wait_for_function("() => document.querySelector('#demo-audio-0 audio')?.getAttribute('src')")
            played = page.evaluate(PLAYABLE, "#demo-audio-0 audio")
            assert played["src"].endswith(".wav") and played["duration"] > 0.5, played
            image = page.locator("#demo-spec-0 img")
            image.wait_for()
            page.wait_for_function("() => document.querySelector('#demo-spec-0 img').naturalWidth > 0")
            assert image.get_attribute("src")
            stats = page.locator("#demo-stats-0")
            stats.get_by_text("RTF").wait_for()
            assert " s of audio at 8000 Hz" in stats.inner_text()

            if live_player():  # the live player's <audio> (hls.js) plays what came
                page.wait_for_function("() => document.querySelector('#demo-stream-1 audio')?.currentTime > 0")
            else:
                assert page.locator("#demo-stream-1").count() == 0
                page.locator("#demo-release-1").get_by_text("needs ffmpeg on PATH").wait_for()
            page.locator("#demo-stats-1").get_by_text("first audio after").wait_for(timeout=120_000)  # the stream ended
            played = page.evaluate(PLAYABLE, "#demo-audio-1 audio")
            assert played["src"].endswith(".wav") and played["duration"] > 0.1, played
            assert "RTF" in page.locator("#demo-stats-1").inner_text()
            page.screenshot(path=str(shot), full_page=True)

            page.locator("#demo-text textarea").fill("")
            page.locator("#demo-run").click()
            page.locator("#demo-status").get_by_text("the text box is empty").wait_for()

            page.locator("#demo-text textarea").fill("hello 日")
            page.locator("#demo-run").click()
            for column in ("#demo-stats-0", "#demo-stats-1"):
                page.locator(column).get_by_text("vocabulary lacks").wait_for()
                assert "'日'" in page.locator(column).inner_text()
            assert page.locator("#demo-stream-1 audio").count() == 0  # the live player is emptied
            assert page.locator("#demo-status").inner_text().strip() == ""
            assert_local(asked, url)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("TTSFRAME_KEEP_ARTIFACTS"):
        artifacts = Path(__file__).resolve().parents[1] / "artifacts"
        artifacts.mkdir(exist_ok=True)
        shutil.copyfile(shot, artifacts / "demo.png")
