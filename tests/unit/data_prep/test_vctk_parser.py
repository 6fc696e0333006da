"""data_prep.vctk on tiny copies of the VCTK-Corpus-0.92 and older VCTK-Corpus layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep import vctk
from data_prep.common import hash_split
from ttsframe.errors import ConfigError, UserError

TEXTS = {
    "p225_001": "Please call Stella.",
    "p225_002": "Ask her to bring these things with her from the store.",
    "p227_001": "Please call Stella.",
    "p227_003": "Six spoons of fresh snow peas.",
}
SPEAKER_INFO_092 = (
    "ID  AGE  GENDER  ACCENTS  REGION COMMENTS \n"
    "p225  23  F    English    Southern  England\n"
    "p227  38  M    English    Cumbria\n"
    "p315  18  M    American    Connecticut  (Text missing)\n"
)
SPEAKER_INFO_OLD = "ID  AGE  GENDER  ACCENTS  REGION\n225  23  F    English    Southern  England\n"


@pytest.fixture
def corpus(tmp_path: Path, write_tone, write_text) -> Path:
    """VCTK-Corpus-0.92: p227_003 has no mic2 recording, p315 has no transcripts."""
    root = tmp_path / "VCTK-Corpus-0.92"
    write_text(root / "README.txt", "CSTR VCTK Corpus\n")
    write_text(root / "speaker-info.txt", SPEAKER_INFO_092)
    write_text(root / "wav48_silence_trimmed" / "log.txt", "trimmed\n")
    for utt, text in TEXTS.items():
        write_text(root / "txt" / utt[:4] / f"{utt}.txt", text + "\n")
    for utt in [*TEXTS, "p315_001"]:
        for mic in ("mic1", "mic2"):
            if (utt, mic) != ("p227_003", "mic2"):
                write_tone(root / "wav48_silence_trimmed" / utt[:4] / f"{utt}_{mic}.flac")
    return root


@pytest.fixture
def old_corpus(tmp_path: Path, write_tone, write_text) -> Path:
    root = tmp_path / "VCTK-Corpus"
    write_text(root / "speaker-info.txt", SPEAKER_INFO_OLD)
    write_text(root / "txt" / "p225" / "p225_001.txt", "Please call Stella.\n")
    write_tone(root / "wav48" / "p225" / "p225_001.wav")
    write_tone(root / "wav48" / "p315" / "p315_001.wav")
    return root


def _find(root: Path | None, **kwargs) -> list:
    kwargs.setdefault("test_speakers", ["p225"])
    return vctk.find(vctk.Config(corpus="vctk", root=str(root) if root else None, **kwargs))


def test_vctk_092_mic1(corpus: Path) -> None:
    got = _find(corpus, dev_fraction=0.5)
    assert [(c.id, c.speaker, c.text) for c in got] == [
        ("p225_001", "p225", "Please call Stella."),
        ("p225_002", "p225", "Ask her to bring these things with her from the store."),
        ("p227_001", "p227", "Please call Stella."),
        ("p227_003", "p227", "Six spoons of fresh snow peas."),
        ("p315_001", "p315", None),
    ]
    assert got[0].audio == str(corpus / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac")
    assert [c.split for c in got[:2]] == ["test", "test"]  # held-out speaker
    assert [c.split for c in got[2:]] == [hash_split(c.id, 0.5, 0.0) for c in got[2:]]
    assert got[-1].problem.startswith("missing transcript")
    assert [c.id for c in got if c.problem] == ["p315_001"]


def test_vctk_092_mic2_lists_only_mic2_recordings(corpus: Path) -> None:
    got = _find(corpus, mic="mic2")
    assert [c.id for c in got] == ["p225_001", "p225_002", "p227_001", "p315_001"]
    assert got[0].audio.endswith("p225_001_mic2.flac")


def test_test_fraction_adds_seen_speaker_utterances(corpus: Path) -> None:
    got = _find(corpus, test_speakers=[], dev_fraction=0.0, test_fraction=1.0)
    assert {c.split for c in got} == {"test"}
    assert {c.split for c in _find(corpus, test_speakers=[], dev_fraction=0.0)} == {"train"}


def test_older_vctk_corpus_layout(old_corpus: Path) -> None:
    got = _find(old_corpus, dev_fraction=0.0)
    assert [(c.id, c.speaker, c.split, c.text, c.problem) for c in got] == [
        ("p225_001", "p225", "test", "Please call Stella.", None),
        ("p315_001", "p315", "train", None, "missing transcript (p315_001.txt)"),
    ]
    assert got[0].audio == str(old_corpus / "wav48" / "p225" / "p225_001.wav")


def test_user_errors(corpus: Path, tmp_path: Path, write_text) -> None:
    with pytest.raises(UserError, match="data.root is not set"):
        _find(None)
    with pytest.raises(UserError, match="no txt/ folder"):
        _find(corpus.parent)  # the folder above VCTK-Corpus-0.92
    with pytest.raises(ConfigError, match="data.mic=mic3"):
        _find(corpus, mic="mic3")
    message = r"data.test_speakers: p226, p234 not in the corpus \(speakers: p225, p227, p315\)"
    with pytest.raises(ConfigError, match=message):
        _find(corpus, test_speakers=["p225", "p226", "p234"])
    bare = tmp_path / "bare"
    write_text(bare / "txt" / "p225" / "p225_001.txt", "Please call Stella.\n")
    with pytest.raises(UserError, match="no wav48_silence_trimmed/ or wav48/"):
        _find(bare)
    (bare / "wav48_silence_trimmed" / "p225").mkdir(parents=True)
    with pytest.raises(UserError, match=r"no \*/\*_mic1.flac files"):
        _find(bare)
