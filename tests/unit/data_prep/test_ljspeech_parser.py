"""data_prep.ljspeech on a tiny copy of the LJSpeech-1.1 layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep import ljspeech
from data_prep.common import hash_split
from ttsframe.errors import UserError

METADATA = (
    "LJ001-0001|Printing, in the only sense with which we are at present concerned|"
    "Printing, in the only sense with which we are at present concerned\n"
    'LJ001-0007|the Gutenberg, or "forty-two line Bible" of about 1455,|'
    'the Gutenberg, or "forty-two line Bible" of about fourteen fifty-five,\n'
    "LJ001-0008|has never been surpassed.|\n"
    "LJ002-0001|listed  but   never recorded.|listed but never recorded.\n"
    "LJ002-0002|   |   \n"
).encode("utf-8") + b"LJ002-0003|caf\xe9|caf\xe9\n"


@pytest.fixture
def corpus(tmp_path: Path, write_tone, write_text) -> Path:
    root = tmp_path / "LJSpeech-1.1"
    write_text(root / "README", "LJ Speech Dataset\n")
    write_text(root / "metadata.csv", METADATA)
    for utt in ("LJ001-0001", "LJ001-0007", "LJ001-0008", "LJ002-0002", "LJ002-0003", "LJ050-0278"):
        write_tone(root / "wavs" / f"{utt}.wav")
    return root


def _find(root: Path | None, **kwargs) -> list:
    return ljspeech.find(ljspeech.Config(corpus="ljspeech", root=str(root) if root else None, **kwargs))


def test_lists_every_utterance_sorted_with_texts(corpus: Path) -> None:
    got = {c.id: c for c in _find(corpus)}
    assert list(got) == [
        "LJ001-0001", "LJ001-0007", "LJ001-0008", "LJ002-0001", "LJ002-0002", "LJ002-0003", "LJ050-0278"
    ]
    assert got["LJ001-0001"].text == "Printing, in the only sense with which we are at present concerned"
    assert got["LJ001-0007"].text == 'the Gutenberg, or "forty-two line Bible" of about fourteen fifty-five,'
    assert got["LJ001-0008"].text == "has never been surpassed."  # normalized column empty: raw text
    assert got["LJ001-0001"].audio == str(corpus / "wavs" / "LJ001-0001.wav")
    assert {c.speaker for c in got.values()} == {"LJ"}
    assert {c.language for c in got.values()} == {"en-us"}


def test_broken_entries_come_back_with_their_problem(corpus: Path) -> None:
    got = {c.id: c for c in _find(corpus)}
    assert [c.id for c in got.values() if c.problem is None] == ["LJ001-0001", "LJ001-0007", "LJ001-0008"]
    assert got["LJ002-0001"].problem.startswith("audio file not found")
    assert got["LJ002-0002"].problem.startswith("empty transcript")
    assert got["LJ002-0003"].problem.startswith("transcript not UTF-8")
    assert got["LJ050-0278"].problem.startswith("missing transcript")  # wav not in metadata.csv
    assert got["LJ002-0003"].text is None and got["LJ050-0278"].text is None


def test_splits_come_from_a_hash_of_the_id(corpus: Path) -> None:
    got = _find(corpus, dev_fraction=0.3, test_fraction=0.3)
    assert [c.split for c in got] == [hash_split(c.id, 0.3, 0.3) for c in got]
    assert {c.split for c in _find(corpus, dev_fraction=0.0, test_fraction=0.0)} == {"train"}
    assert got == _find(corpus, dev_fraction=0.3, test_fraction=0.3)


def test_user_errors(corpus: Path, write_text) -> None:
    with pytest.raises(UserError, match="data.root is not set"):
        _find(None)
    with pytest.raises(UserError, match="no such folder"):
        _find(corpus / "nope")
    with pytest.raises(UserError, match="no metadata.csv"):
        _find(corpus.parent)  # the folder above LJSpeech-1.1
    write_text(corpus / "metadata.csv", METADATA + b"LJ003-0001\n")
    with pytest.raises(UserError, match=r"metadata.csv:7: expected `id\|raw text\|normalized text`"):
        _find(corpus)
    write_text(corpus / "metadata.csv", METADATA + b"LJ001-0001|again|again\n")
    with pytest.raises(UserError, match="metadata.csv:7: id LJ001-0001 already on line 1"):
        _find(corpus)


def test_no_audio_at_all_is_a_user_error(tmp_path: Path, write_text) -> None:
    write_text(tmp_path / "LJSpeech-1.1" / "metadata.csv", METADATA)
    with pytest.raises(UserError, match="no .wav files"):
        _find(tmp_path / "LJSpeech-1.1")
