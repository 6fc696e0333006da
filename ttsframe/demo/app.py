"""The demo page (gr.Blocks) and `serve`, which loads the releases once and serves it on the CPU.

Layout: the shared inputs (text, voice prompt, transcript, button, status line), examples when a
release has any (`ttsframe.demo.examples`), then one column per release: its sampling options
(`ttsframe.demo.options`), audio, spectrogram and a line with duration and RTF. A click first
checks the shared inputs and fills an empty transcript with the ASR (`prepare`); then each
release runs as its own queued event (one request at a time per release, releases in parallel).
A release that streams (`ttsframe.demo.streaming`, CosyVoice) also gets a streaming player that
plays the chunks as they come; the audio, spectrogram and line (with the first-audio latency)
follow when the stream ends.
`launch` turns the queue on and serves; `serve` (the `demo` command) loads the releases first.
Bad input shows as a message in the page: in the status line, or in a release's column when
only that release refuses it (e.g. symbols its vocabulary lacks); never a traceback.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable

from ttsframe.demo.display import error_markdown, escape_markdown, to_pcm16
from ttsframe.demo.examples import page_examples
from ttsframe.demo.inputs import InputError, prepare_request
from ttsframe.demo.options import OptionField, build_options, option_fields
from ttsframe.demo.releases import DemoRelease, load_releases
from ttsframe.demo.spectrogram import spectrogram_image
from ttsframe.demo.streaming import live_player, stream_handler, streams
from ttsframe.demo.synthesis import synthesize
from ttsframe.demo.transcribe import LazyASR
from ttsframe.errors import UserError

log = logging.getLogger(__name__)
LOCAL_FONTS = (["ui-sans-serif", "system-ui", "sans-serif"], ["ui-monospace", "monospace"])  # no font CDN


def option_control(field: OptionField):
    """The Gradio control of one sampling option, at its default."""
    import gradio as gr

    common = {"label": field.name, "info": field.help or None, "value": field.default}
    if field.kind == "bool":
        return gr.Checkbox(**common)
    if field.kind in ("int", "float"):
        return gr.Number(precision=0 if field.kind == "int" else None, **common)
    if field.kind == "choice":
        return gr.Dropdown(choices=list(field.choices), **common)
    return gr.Textbox(**{**common, "value": "" if field.default is None else field.default})


def prepare_handler(transcribe: Callable):
    """(text, prompt path, transcript) -> (transcript box, status line, request state)."""
    def prepare(text, prompt, transcript):
        typed = bool((transcript or "").strip())
        try:
            request = prepare_request(text, prompt, transcript, transcribe)
        except UserError as e:  # InputError, or the ASR's own (e.g. its model files)
            return transcript, error_markdown(str(e)), None
        except Exception as e:  # a bug (or the ASR failing): the server log has the traceback
            log.exception("demo: preparing the request failed")
            return transcript, error_markdown(f"could not prepare the request ({type(e).__name__}: {e}); "
                                              "type the prompt's transcript to skip the ASR"), None
        note = "" if typed else "Transcript of the prompt written by the bundled ASR: correct it if it is wrong."
        return request.transcript, note, request
    return prepare


def release_handler(release: DemoRelease, fields: list[OptionField]):
    """(request state, *option values) -> (audio, spectrogram, result line) of one release."""
    def run(request, *values):
        if request is None:  # the shared inputs were refused: clear this column
            return None, None, ""
        try:
            options = build_options(release.default_options, fields, list(values))
            result = synthesize(release, request, options)
        except InputError as e:
            return None, None, error_markdown(str(e))
        except Exception as e:  # a bug: the server log has the traceback, the page a line
            log.exception("demo: %s failed", release.name)
            return None, None, error_markdown(f"synthesis failed ({type(e).__name__}: {e})")
        image = spectrogram_image(result.wav, result.sample_rate)  # (H, W, 3) uint8
        return (result.sample_rate, to_pcm16(result.wav)), image, result.summary()
    return run


def build_app(releases: list[DemoRelease], transcribe: Callable | None = None,
              examples: list[list[str]] | None = None):
    """The page for `releases` (a gr.Blocks, not yet queued or launched).

    Args:
        transcribe: (wav (T,), rate) -> transcript for empty transcript boxes; default `LazyASR()`.
        examples: [text, prompt path, transcript] rows; default `page_examples` of the releases.
    """
    import gradio as gr

    transcribe = transcribe or LazyASR()
    examples = page_examples([r.path for r in releases]) if examples is None else examples
    theme = gr.themes.Default(font=LOCAL_FONTS[0], font_mono=LOCAL_FONTS[1])
    with warnings.catch_warnings():  # Gradio 5 takes the theme here; 6 wants it in launch()
        warnings.filterwarnings("ignore", "The 'theme' parameter", DeprecationWarning)
        demo = gr.Blocks(title="ttsframe demo", analytics_enabled=False, theme=theme)
    with demo:
        columns = "one release" if len(releases) == 1 else f"{len(releases)} releases side by side"
        gr.Markdown("# ttsframe: zero-shot TTS demo\n"
                    f"{columns} on the CPU; the same text and prompt go to each. "
                    "RTF = compute seconds / audio seconds.")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Text to say", lines=3, elem_id="demo-text",
                                  placeholder="Type what the voice should say.")
                transcript = gr.Textbox(label="Transcript of the voice prompt", lines=2, elem_id="demo-transcript",
                                        placeholder="Leave empty: the bundled ASR (faster-whisper tiny.en) "
                                                    "writes it when you synthesize.")
            with gr.Column(scale=2):
                prompt = gr.Audio(label="Voice prompt (3-10 s of one speaker)", sources=["upload", "microphone"],
                                  type="filepath", elem_id="demo-prompt")
                button = gr.Button("Synthesize", variant="primary", elem_id="demo-run")
        status = gr.Markdown("", elem_id="demo-status")
        if examples:
            gr.Examples(examples, inputs=[text, prompt, transcript], label="Examples (the experiment's test prompts)")
        request = gr.State(None)
        prepared = button.click(prepare_handler(transcribe), [text, prompt, transcript], [transcript, status, request],
                                concurrency_id="prepare", concurrency_limit=1)
        with gr.Row(equal_height=False):
            for i, release in enumerate(releases):
                with gr.Column(elem_id=f"demo-release-{i}"):
                    streaming = streams(release)
                    live = streaming and live_player()
                    note = ("\n\nIt streams, but the live player needs ffmpeg on PATH: the audio comes "
                            "when it is complete.") if streaming and not live else ""
                    gr.Markdown(f"### {escape_markdown(release.name)}\n{escape_markdown(release.title)} "
                                f"({release.family}, {release.synthesizer.sample_rate} Hz){note}")
                    fields = option_fields(release.default_options)
                    with gr.Accordion(f"Sampling options ({release.options_class.__name__})", open=False):
                        controls = [option_control(f) for f in fields]
                    player = [gr.Audio(label="Streaming (plays while the LM decodes)", streaming=True, autoplay=True,
                                       interactive=False, elem_id=f"demo-stream-{i}")] if live else []
                    audio = gr.Audio(label="Synthesized", type="numpy", format="wav", interactive=False,
                                     elem_id=f"demo-audio-{i}",  # the browser's own <audio controls> player
                                     waveform_options=gr.WaveformOptions(show_recording_waveform=False))
                    image = gr.Image(label="Spectrogram", type="numpy", format="png", interactive=False,
                                     elem_id=f"demo-spec-{i}")
                    stats = gr.Markdown("", elem_id=f"demo-stats-{i}")
                handler = (stream_handler(release, fields, live, cleared=gr.update(value=None)) if streaming
                           else release_handler(release, fields))
                prepared.then(handler, [request, *controls], [*player, audio, image, stats],
                              concurrency_id=f"release-{i}", concurrency_limit=1)
    return demo


def launch(demo, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Turns the queue on (one request at a time per event: per release) and serves `demo`;
    block=False returns once the server runs (in a background thread; `demo.close()` stops it).

    Raises:
        UserError: the port is taken.
    """
    demo.queue(default_concurrency_limit=1)
    try:
        demo.launch(server_name=host, server_port=port, ssr_mode=False, inbrowser=False,
                    prevent_thread_lock=not block, quiet=not block)
    except OSError as e:
        raise UserError(f"cannot serve the demo on {host}:{port}: {e}") from None
    return demo


def serve(paths: list[str | Path], host: str = "127.0.0.1", port: int = 7860) -> None:
    """Loads the releases (once, CPU), then serves the page until interrupted.

    Raises:
        UserError: Gradio missing, a bad release folder, or a port that is taken.
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the demo needs Gradio: pip install -e '.[demo]'") from None
    releases = load_releases(paths, device="cpu")
    for release in releases:
        print(f"demo: {release.name}: {release.family} release, {release.synthesizer.sample_rate} Hz")
    launch(build_app(releases), host, port)
