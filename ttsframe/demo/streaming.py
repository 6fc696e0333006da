"""Releases that stream (a synthesizer with `stream(item, options)`, e.g. CosyVoice): audio
chunks while the LM decodes, then the whole answer as the other columns show it.

    streams(release)    whether its synthesizer has `stream`
    live_player()       whether Gradio's streaming player can run here: it encodes with ffmpeg,
                        so without ffmpeg on PATH the column gets the audio only at the end
                        (the first-audio latency is still measured and shown)
    stream_synthesis    checks the request, yields (T_k,) float32 chunks, returns the `Result`
    stream_handler      the column's generator: (rate, int16) chunks to the streaming player,
                        then the full audio, its spectrogram and the result line
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Iterator

import numpy as np

from ttsframe.demo.display import error_markdown, to_pcm16
from ttsframe.demo.inputs import InputError, Request
from ttsframe.demo.options import OptionField, build_options
from ttsframe.demo.releases import DemoRelease
from ttsframe.demo.spectrogram import spectrogram_image
from ttsframe.demo.synthesis import Result, checked_item
from ttsframe.errors import UserError

log = logging.getLogger(__name__)


def streams(release: DemoRelease) -> bool:
    return callable(getattr(release.synthesizer, "stream", None))


def live_player() -> bool:
    return shutil.which("ffmpeg") is not None


def stream_synthesis(release: DemoRelease, request: Request, options) -> Iterator[np.ndarray]:
    """Yields the chunks of `release.synthesizer.stream`; returns their `Result` (compute
    seconds: time spent inside the stream, not in the consumer; first_audio_seconds: until
    the first chunk).

    Raises:
        InputError: symbols the vocabulary lacks, or what the synthesizer refuses (UserError).
    """
    synth = release.synthesizer
    item = checked_item(synth, request)
    chunks, compute, first = [], 0.0, None
    stream = iter(synth.stream(item, options))
    while True:
        began = time.perf_counter()
        try:
            chunk = next(stream)
        except StopIteration:
            break
        except UserError as e:
            raise InputError(str(e)) from None
        finally:
            compute += time.perf_counter() - began
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size:
            first = compute if first is None else first
            chunks.append(chunk)
            yield chunk
    wav = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return Result(wav, int(synth.sample_rate), compute, {}, first, len(chunks))


def stream_handler(release: DemoRelease, fields: list[OptionField], player: bool = True, cleared=None):
    """(request state, *option values) -> a generator of (stream chunk, audio, spectrogram, result
    line); without `player`, of (audio, spectrogram, result line) only. The chunks are
    (rate, (T_k,) int16); the stream slot is None once the stream ends, and `cleared` when there
    is nothing to stream (refused input, a failure; app.py: an update that empties the player)."""
    def out(chunk, audio, image, line):
        return (chunk, audio, image, line) if player else (audio, image, line)

    def run(request, *values):
        if request is None:  # the shared inputs were refused: clear this column
            yield out(cleared, None, None, "")
            return
        rate, seconds = int(release.synthesizer.sample_rate), 0.0
        try:
            options = build_options(release.default_options, fields, list(values))
            chunks = stream_synthesis(release, request, options)
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration as end:
                    result = end.value
                    break
                seconds += len(chunk) / rate
                yield out((rate, to_pcm16(chunk)), None, None, f"Streaming: {seconds:.2f} s of audio so far …")
        except InputError as e:
            yield out(cleared, None, None, error_markdown(str(e)))
            return
        except Exception as e:  # a bug: the server log has the traceback, the page a line
            log.exception("demo: %s failed", release.name)
            yield out(cleared, None, None, error_markdown(f"synthesis failed ({type(e).__name__}: {e})"))
            return
        image = spectrogram_image(result.wav, result.sample_rate)
        yield out(None, (result.sample_rate, to_pcm16(result.wav)), image, result.summary())
    return run
