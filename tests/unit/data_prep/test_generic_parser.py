"""data_prep.generic: a folder of audio + .txt files, or a jsonl manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep import generic
from data_prep.common import hash_split
from ttsframe.errors import ConfigError, UserError


@pytest.fixture
def folder(tmp_path: Path, write_tone, write_text) -> Path:
    root = tmp_path / "my_voices"
    for rel, text in {
        "alice/001.wav": "Hello from Alice.",
        "alice/book 1/a.b.wav": "Dotted  name.\n",
        "bob/002.flac": "Hello from Bob.",
        "bob/003.ogg": None,  # no transcript
        "top.wav": "At the top.",
        "x.y.wav": "Clash one.",
        "x_y.WAV": "Clash two.",
    }.items():
        write_tone(root / rel)
        if text is not None:
            write_text((root / rel).with_suffix(".txt"), text)
    write_text(root / "bob" / "notes.txt", "not an utterance")
    return root


def _find(**kwargs) -> list:
    return generic.find(generic.Config(corpus="generic", **kwargs))


def test_folder_ids_speakers_texts(folder: Path) -> None:
    got = _find(root=str(folder))
    assert [(c.id, c.speaker, c.text) for c in got] == [
        ("alice_001", "alice", "Hello from Alice."),
        ("alice_book_1_a_b", "alice/book 1", "Dotted name."),
        ("bob_002", "bob", "Hello from Bob."),
        ("bob_003", "bob", None),
        ("top", "spk0", "At the top."),
        ("x_y", "spk0", "Clash one."),  # x.y.wav sorts before x_y.WAV
        ("x_y_2", "spk0", "Clash two."),
    ]
    assert [c.id for c in got if c.problem] == ["bob_003"]
    assert got[3].problem.startswith("missing transcript")
    assert got[1].audio == str(folder / "alice" / "book 1" / "a.b.wav")
    assert [c.split for c in got] == [hash_split(c.id, 0.02, 0.02) for c in got]


def test_folder_speaker_constant_and_splits(folder: Path) -> None:
    got = _find(root=str(folder), speaker="narrator", dev_fraction=0.5, test_fraction=0.5)
    assert {c.speaker for c in got} == {"narrator"}
    assert [c.split for c in got] == [hash_split(c.id, 0.5, 0.5) for c in got]
    assert got == _find(root=str(folder), speaker="narrator", dev_fraction=0.5, test_fraction=0.5)


def _write_manifest(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_manifest(tmp_path: Path, write_tone) -> None:
    data = tmp_path / "data"
    write_tone(data / "wavs" / "a.wav")
    write_tone(data / "wavs" / "c.wav")
    elsewhere = write_tone(tmp_path / "elsewhere" / "b.flac")
    manifest = _write_manifest(data / "train.jsonl", [
        {"audio": "wavs/a.wav", "text": "Hello  there.", "speaker": "s1", "split": "test"},
        {"audio": "wavs/a.wav", "text": "Second segment.", "start": 0.1, "end": 0.2},
        "",
        {"audio": str(elsewhere), "text": "Absolute path.", "id": "my.utt 1", "language": "en-gb"},
        {"audio": "wavs/missing.wav", "text": "Gone."},
        {"audio": "wavs/c.wav", "text": "  "},
        {"audio": "wavs/c.wav", "text": None, "id": "wavs_a"},
    ])
    got = {c.id: c for c in _find(manifest=str(manifest), speaker="narrator")}
    assert list(got) == ["my_utt_1", "wavs_a", "wavs_a_2", "wavs_a_3", "wavs_c", "wavs_missing"]
    first, second = got["wavs_a_2"], got["wavs_a_3"]
    assert (first.text, first.speaker, first.split) == ("Hello there.", "s1", "test")
    assert first.audio == str(data / "wavs" / "a.wav")
    assert (second.start, second.end, second.speaker) == (0.1, 0.2, "narrator")
    assert second.split == hash_split("wavs_a_3", 0.02, 0.02)
    assert (got["my_utt_1"].audio, got["my_utt_1"].language) == (str(elsewhere), "en-gb")
    assert got["wavs_missing"].problem.startswith("audio file not found")
    assert got["wavs_c"].problem == "empty transcript"
    assert got["wavs_a"].problem.startswith("missing transcript")
    assert [c.id for c in got.values() if c.problem is None] == ["my_utt_1", "wavs_a_2", "wavs_a_3"]


@pytest.mark.parametrize(("line", "message"), [
    ('{"audio": "a.wav", "text": "hi"', "train.jsonl:2: not valid JSON"),
    ('["a.wav", "hi"]', "train.jsonl:2: expected a JSON object"),
    ('{"audio": "a.wav", "transcript": "hi"}', "train.jsonl:2: unknown field.* transcript"),
    ('{"audio": "a.wav"}', "train.jsonl:2: missing field `text`"),
    ('{"audio": "a.wav", "text": "hi", "split": "valid"}', "train.jsonl:2: split 'valid' is not one of"),
    ('{"audio": "a.wav", "text": "hi", "start": "0"}', "train.jsonl:2: field `start` has the wrong type"),
    ('{"audio": "", "text": "hi"}', "train.jsonl:2: `audio` is empty"),
    ('{"audio": "b.wav", "text": "hi", "id": "u1"}', "train.jsonl:2: id 'u1' is empty or repeats"),
])
def test_bad_manifest_lines(tmp_path: Path, line: str, message: str) -> None:
    manifest = _write_manifest(tmp_path / "train.jsonl", ['{"audio": "a.wav", "text": "hi", "id": "u1"}', line])
    with pytest.raises(UserError, match=message):
        _find(manifest=str(manifest))


def test_user_errors(tmp_path: Path, folder: Path, write_text) -> None:
    with pytest.raises(UserError, match="data.root is not set"):
        _find()
    with pytest.raises(UserError, match="no such folder"):
        _find(root=str(tmp_path / "nope"))
    write_text(tmp_path / "texts_only" / "a.txt", "hello")
    with pytest.raises(UserError, match="no .wav .flac .ogg .mp3 files"):
        _find(root=str(tmp_path / "texts_only"))
    with pytest.raises(ConfigError, match="both set"):
        _find(root=str(folder), manifest=str(tmp_path / "m.jsonl"))
    with pytest.raises(UserError, match="data.manifest=.*: no such file"):
        _find(manifest=str(tmp_path / "m.jsonl"))
    write_text(tmp_path / "empty.jsonl", "\n")
    with pytest.raises(UserError, match="empty.jsonl: no lines"):
        _find(manifest=str(tmp_path / "empty.jsonl"))
    write_text(tmp_path / "latin1.jsonl", b'{"audio": "a.wav", "text": "caf\xe9"}\n')
    with pytest.raises(UserError, match="latin1.jsonl:1: not UTF-8"):
        _find(manifest=str(tmp_path / "latin1.jsonl"))


def test_manifest_paths_outside_its_folder(tmp_path: Path, write_tone) -> None:
    write_tone(tmp_path / "wavs" / "a.wav")
    manifest = _write_manifest(tmp_path / "lists" / "all.jsonl", [{"audio": "../wavs/a.wav", "text": "Up one."}])
    (got,) = _find(manifest=str(manifest))
    assert got.audio == str(tmp_path / "wavs" / "a.wav") and got.problem is None
    assert got.id == generic.sanitize(str(tmp_path / "wavs" / "a").lstrip("/"))
