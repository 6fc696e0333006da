"""Each kind of bad utterance is rejected with its reason; good ones keep their file's format."""

import numpy as np
import pytest
import soundfile as sf

from ttsframe.data.manifest import Candidate, Utterance
from ttsframe.pipeline.validate import validate

LIMITS = dict(min_duration=0.5, max_duration=5.0, silence_db=-50.0)


def tone(seconds: float, sr: int = 16000, channels: int = 1, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wav = amplitude * np.sin(2 * np.pi * 220 * t)
    return np.stack([wav] * channels, axis=1) if channels > 1 else wav


def write(tmp_path, name, wav, sr=16000) -> str:
    path = tmp_path / name
    sf.write(path, wav, sr)
    return str(path)


def check(tmp_path, audio, text="hello there", **kw) -> Utterance | str:
    return validate(Candidate(id="u1", audio=audio, text=text, speaker="s", **kw), **LIMITS)


def test_good_file_keeps_its_rate_and_channels(tmp_path):
    result = check(tmp_path, write(tmp_path, "a.wav", tone(1.0, 44100, channels=2), 44100))
    assert isinstance(result, Utterance)
    assert result.sample_rate == 44100 and result.channels == 2
    assert result.duration == pytest.approx(1.0)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: write(p, "short.wav", tone(0.2)), "too short"),
        (lambda p: write(p, "long.wav", tone(6.0)), "too long"),
        (lambda p: write(p, "silent.wav", np.zeros(16000)), "silent"),
        (lambda p: write(p, "quiet.wav", tone(1.0, amplitude=1e-4)), "silent"),
        (lambda p: write(p, "empty.wav", np.zeros(0)), "empty audio"),
        (lambda p: str(p / "missing.wav"), "audio file not found"),
    ],
)
def test_bad_audio_is_rejected_with_reason(tmp_path, make, reason):
    result = check(tmp_path, make(tmp_path))
    assert isinstance(result, str) and result.startswith(reason), result


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00junk" * 10)
    result = check(tmp_path, str(path))
    assert isinstance(result, str) and result.startswith("unreadable audio")


def test_transcript_problems(tmp_path):
    audio = write(tmp_path, "a.wav", tone(1.0))
    assert check(tmp_path, audio, text="  ") == "empty transcript"
    assert check(tmp_path, audio, text=None, problem="transcript a.txt is not UTF-8") == "transcript a.txt is not UTF-8"


def test_segment_window(tmp_path):
    audio = write(tmp_path, "a.wav", np.concatenate([np.zeros(16000), tone(1.0)]))
    assert isinstance(check(tmp_path, audio, start=0.0, end=1.0), str)  # the silent first second
    ok = check(tmp_path, audio, start=1.0, end=2.0)
    assert isinstance(ok, Utterance) and ok.duration == pytest.approx(1.0)
    assert "outside" in check(tmp_path, audio, start=1.5, end=9.0)
