"""The demo's streaming column without a browser: a tiny random CosyVoice (tiny presets, char
frontend, Griffin-Lim, no speaker embedding) streams several int16 chunks that add up to the
final audio, whose line carries the RTF and the first-audio latency; refused input answers in
the column; families without `stream` are not streamed."""

import dataclasses
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tiny_tokenizer import save_tiny_tokenizer

from ttsframe.codecs.mel import MelConfig
from ttsframe.demo.inputs import Request
from ttsframe.demo.options import option_fields
from ttsframe.demo.releases import DemoRelease
from ttsframe.demo.streaming import stream_handler, streams
from ttsframe.models.cosyvoice.flow import CosyVoiceFlow
from ttsframe.models.cosyvoice.flow_presets import flow_tiny
from ttsframe.models.cosyvoice.lm import SpeechLM
from ttsframe.models.cosyvoice.presets import lm_tiny
from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions
from ttsframe.models.cosyvoice.synthesizer import CosyVoiceSynthesizer
from ttsframe.text import CharFrontend, Vocabulary
from ttsframe.tokenizers.s3_asr.io import load_tokenizer
from ttsframe.vocoders.griffin_lim import GriffinLim

RATE, M = 8000, 20
MEL = MelConfig(sample_rate=RATE, n_fft=256, hop_length=64, win_length=256, n_mels=M, fmax=4000.0)
# enough tokens for several flow chunks (4 tokens each), few flow steps
OVERRIDES = {"min_token_text_ratio": 1.5, "max_token_text_ratio": 2.0, "flow_steps": 3, "seed": 3}


def tiny_cosyvoice(folder: Path) -> CosyVoiceSynthesizer:
    """A seeded random CosyVoice at 8 kHz; its speech tokenizer is saved to `folder`."""
    tokenizer = load_tokenizer(save_tiny_tokenizer(folder))  # seeds torch with 0
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["hello world.", "a quick voice prompt, the test"]), frontend.settings())
    lm = SpeechLM(lm_tiny(len(vocab), tokenizer.vocab_size, spk_dim=0))
    flow = CosyVoiceFlow(dataclasses.replace(flow_tiny(tokenizer.vocab_size, n_mels=M), spk_dim=0,
                                             mel_rate=RATE / MEL.hop_length))
    return CosyVoiceSynthesizer(lm, flow, tokenizer, None, MEL, frontend, vocab, GriffinLim(MEL, n_iter=4),
                                text_config={"frontend": "chars", "language": "en-us"}, max_prompt_seconds=3.0)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    with warnings.catch_warnings():  # torch on the flow's speaker layer of width 0
        warnings.filterwarnings("ignore", "Initializing zero-element tensors", UserWarning)
        synth = tiny_cosyvoice(tmp_path_factory.mktemp("tokenizer"))
    return DemoRelease("cosy", Path("cosy"), synth, CosyVoiceSamplingOptions)


def request(text: str = "hello world") -> Request:
    t = np.arange(2 * 16000) / 16000
    return Request(text, (0.3 * np.sin(2 * np.pi * 140 * t)).astype(np.float32), 16000, "a quick voice prompt")


def run(release, req, player=True):
    fields = option_fields(release.options_class)
    values = [OVERRIDES.get(f.name, f.default) for f in fields]
    return list(stream_handler(release, fields, player)(req, *values))


def test_chunks_stream_before_the_full_audio_and_add_up_to_it(release):
    updates = run(release, request())
    *streamed, (end, audio, image, line) = updates
    assert len(streamed) > 1
    for chunk, full, spectrogram, text in streamed:
        rate, pcm = chunk
        assert rate == RATE and pcm.dtype == np.int16 and pcm.ndim == 1 and pcm.size > 0
        assert full is None and spectrogram is None and text.startswith("Streaming:")
    rate, wav = audio
    assert end is None and rate == RATE and wav.dtype == np.int16
    assert np.allclose(np.concatenate([c[0][1] for c in streamed]), wav)
    assert image.ndim == 3 and image.dtype == np.uint8
    assert "RTF" in line and "first audio after" in line and f"({len(streamed)} chunks streamed)" in line


def test_without_the_live_player_only_the_end_has_audio(release):
    updates = run(release, request(), player=False)
    assert all(len(u) == 3 and u[0] is None for u in updates[:-1]) and len(updates) > 1
    assert updates[-1][0][1].size and "first audio after" in updates[-1][2]


def test_refused_input_answers_in_the_column(release):
    assert run(release, None) == [(None, None, None, "")]
    [(chunk, audio, image, line)] = run(release, request("hello 日"))
    assert chunk is None and audio is None and image is None
    assert "vocabulary lacks" in line and "'日'" in line and line.startswith("⚠️")


def test_only_synthesizers_with_stream_are_streamed(release):
    assert streams(release)
    assert not streams(DemoRelease("melle", Path("melle"), SimpleNamespace(synthesize=None), object))
