"""The demo's input checks, without a browser or Gradio: empty text, prompts that are missing,
not audio, too short or silent, symbols a vocabulary lacks (named), the ASR filling an empty
transcript, and sampling-option values."""

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from ttsframe.demo.inputs import (InputError, check_prompt, check_symbols, check_text, prepare_request, read_prompt,
                                  unknown_symbols)
from ttsframe.demo.options import build_options, option_fields
from ttsframe.models.ditar.generate import DiTARSamplingOptions
from ttsframe.text import CharFrontend, Vocabulary

RATE = 16000


def tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 140 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def synth():
    """What the checks read of a synthesizer: its frontend and vocabulary."""
    frontend = CharFrontend()
    return SimpleNamespace(frontend=frontend,
                           vocab=Vocabulary.build(frontend.symbols(["hello world."]), frontend.settings()))


@pytest.mark.parametrize("text", [None, "", "  \n\t "])
def test_empty_text_is_refused(text):
    with pytest.raises(InputError, match="text box is empty"):
        check_text(text)
    assert check_text("  Hello. ") == "Hello."


def test_prompt_missing_or_not_audio(tmp_path):
    with pytest.raises(InputError, match="Give a voice prompt"):
        read_prompt(None)
    fake = tmp_path / "voice.wav"
    fake.write_text("not audio at all")
    with pytest.raises(InputError, match="'voice.wav' is not audio"):
        read_prompt(str(fake))


def test_prompt_from_file_or_pcm_pairs_is_mono_float(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone(1.5), tone(1.5)], axis=1), RATE)
    wav, rate = read_prompt(str(path))
    assert rate == RATE and wav.shape == (int(1.5 * RATE),) and wav.dtype == np.float32
    pcm = (np.stack([tone(1.0), -tone(1.0)], axis=1) * 32767).astype(np.int16)  # (T, 2) as Gradio gives it
    wav, rate = read_prompt((RATE, pcm))
    assert rate == RATE and wav.shape == (RATE,) and np.abs(wav).max() < 1e-3  # the channels cancel
    wav, _ = read_prompt((RATE, pcm[:, 0]))
    assert 0.29 < np.abs(wav).max() <= 0.31


def test_short_or_silent_prompts_are_refused():
    with pytest.raises(InputError, match=r"too short \(0\.50 s\)"):
        check_prompt(tone(0.5), RATE)
    with pytest.raises(InputError, match="silent"):
        check_prompt(np.zeros(2 * RATE, dtype=np.float32), RATE)
    with pytest.raises(InputError, match="silent"):
        check_prompt(tone(2.0, amplitude=1e-4), RATE)
    check_prompt(tone(1.0), RATE)


def test_unknown_symbols_are_named(synth):
    assert unknown_symbols(synth.frontend, synth.vocab, "Hello, world.") == [","]
    with pytest.raises(InputError, match="vocabulary lacks: ',', 'ß', '日'"):
        check_symbols(synth, "Hello, ß 日 world.")
    with pytest.raises(InputError, match="^The prompt's transcript has symbols"):
        check_symbols(synth, "hello!", "The prompt's transcript")
    with pytest.raises(InputError, match="nothing to say"):
        check_symbols(synth, "")
    check_symbols(synth, "Hello world.")


def test_an_empty_transcript_is_the_asr_s(tmp_path):
    heard = []

    def asr(wav, rate):
        heard.append((len(wav), rate))
        return " hello world "

    request = prepare_request("Say this.", (RATE, tone(2.0)), "  ", asr)
    assert request.transcript == "hello world" and heard == [(2 * RATE, RATE)] and request.text == "Say this."
    assert prepare_request("Say this.", (RATE, tone(2.0)), "typed", asr).transcript == "typed" and len(heard) == 1
    with pytest.raises(InputError, match="heard no words"):
        prepare_request("Say this.", (RATE, tone(2.0)), "", lambda wav, rate: "")
    with pytest.raises(InputError, match="text box is empty"):  # the text is checked first
        prepare_request("", None, "", asr)


def test_sampling_option_values():
    fields = option_fields(DiTARSamplingOptions)
    kinds = {f.name: (f.kind, f.default) for f in fields}
    assert kinds["nfe"] == ("int", 10) and kinds["cfg_scale"] == ("float", 1.0)
    assert kinds["solver"] == ("choice", "ddim") and {"ddim", "euler"} <= set(fields[3].choices)
    assert "LocDiT evaluations per patch" in fields[0].help
    defaults = [f.default for f in fields]
    assert build_options(DiTARSamplingOptions, fields, defaults) == DiTARSamplingOptions()
    assert build_options(DiTARSamplingOptions, fields, [4.0, None, *defaults[2:]]).nfe == 4
    with pytest.raises(InputError, match="nfe: 2.5 is not a whole number"):
        build_options(DiTARSamplingOptions, fields, [2.5, *defaults[1:]])
    with pytest.raises(InputError, match=r"temperature must be in \[0, 1\]"):
        build_options(DiTARSamplingOptions, fields, [10, 1.0, 3.0, *defaults[3:]])


def test_sampling_controls_start_from_a_release_s_recorded_options():
    recorded = DiTARSamplingOptions(nfe=4, cfg_scale=0.0)
    fields = option_fields(recorded)
    kinds = {f.name: (f.kind, f.default) for f in fields}
    assert kinds["nfe"] == ("int", 4) and kinds["cfg_scale"] == ("float", 0.0)
    assert build_options(recorded, fields, [None] * len(fields)) == recorded  # untouched controls keep them
    assert build_options(recorded, fields, [8, *[None] * (len(fields) - 1)]) == DiTARSamplingOptions(nfe=8, cfg_scale=0.0)
