"""data_prep.libritts on a tiny copy of the LibriTTS / LibriTTS-R layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep import libritts
from ttsframe.errors import ConfigError, UserError

# subset -> speaker -> chapter -> utterance -> (original, normalized); None: no transcript files.
UTTERANCES = {
    "train-clean-100": {
        "19": {"198": {
            "19_198_000000_000000": ("Chapter 1.", "Chapter one."),
            "19_198_000000_000003": ("It cost $5.", "It cost five dollars."),
        }},
        "26": {"495": {"26_495_000004_000000": None}},
    },
    "dev-clean": {"84": {"121123": {"84_121123_000007_000001": ("Mr. Hale.", "Mister Hale.")}}},
    "test-clean": {"1089": {"134686": {"1089_134686_000001_000001": ("He hoped.", "He hoped.")}}},
    "train-other-500": {"20": {"205": {"20_205_000002_000000": ("Other.", "Other.")}}},
}


@pytest.fixture(params=["LibriTTS", "LibriTTS_R"])
def corpus(request, tmp_path: Path, write_tone, write_text) -> Path:
    root = tmp_path / request.param
    for name in ("BOOKS.txt", "CHAPTERS.txt", "LICENSE.txt", "NOTE.txt", "README_libritts.txt", "SPEAKERS.txt"):
        write_text(root / name, ";\n")
    write_text(root / "speakers.tsv", "READER\tGENDER\tSUBSET\tNAME\n19\tF\ttrain-clean-100\tKara Shallenberg\n")
    for subset, speakers in UTTERANCES.items():
        for speaker, chapters in speakers.items():
            for chapter, utts in chapters.items():
                folder = root / subset / speaker / chapter
                write_text(folder / f"{speaker}_{chapter}.book.tsv", "")
                write_text(folder / f"{speaker}_{chapter}.trans.tsv", "")
                for utt, texts in utts.items():
                    write_tone(folder / f"{utt}.wav")
                    if texts:
                        write_text(folder / f"{utt}.original.txt", texts[0])
                        write_text(folder / f"{utt}.normalized.txt", texts[1])
    return root


def _find(root: Path | None, **kwargs) -> list:
    return libritts.find(libritts.Config(corpus="libritts", root=str(root) if root else None, **kwargs))


def test_default_subsets_map_to_splits(corpus: Path) -> None:
    got = _find(corpus)
    assert [(c.id, c.speaker, c.split) for c in got] == [
        ("1089_134686_000001_000001", "1089", "test"),
        ("19_198_000000_000000", "19", "train"),
        ("19_198_000000_000003", "19", "train"),
        ("26_495_000004_000000", "26", "train"),
        ("84_121123_000007_000001", "84", "dev"),
    ]
    by_id = {c.id: c for c in got}
    assert by_id["19_198_000000_000003"].text == "It cost five dollars."
    assert by_id["19_198_000000_000003"].audio == str(corpus / "train-clean-100/19/198/19_198_000000_000003.wav")
    assert by_id["26_495_000004_000000"].problem.startswith("missing transcript")
    assert by_id["26_495_000004_000000"].text is None
    assert [c.id for c in got if c.problem] == ["26_495_000004_000000"]


def test_original_text_and_chosen_subsets(corpus: Path) -> None:
    got = _find(corpus, subsets=["train-other-500", "dev-clean", "dev-clean"], text_field="original")
    assert [(c.id, c.text, c.split) for c in got] == [
        ("20_205_000002_000000", "Other.", "train"),
        ("84_121123_000007_000001", "Mr. Hale.", "dev"),
    ]


def test_unreadable_transcripts_are_problems(corpus: Path, write_text) -> None:
    folder = corpus / "dev-clean/84/121123"
    write_text(folder / "84_121123_000007_000001.normalized.txt", b"Mister \xff\n")
    got = _find(corpus, subsets=["dev-clean"])
    assert got[0].problem.startswith("transcript not UTF-8 (84_121123_000007_000001.normalized.txt")
    write_text(folder / "84_121123_000007_000001.normalized.txt", "\n")
    assert _find(corpus, subsets=["dev-clean"])[0].problem.startswith("empty transcript")


def test_user_errors(corpus: Path) -> None:
    with pytest.raises(UserError, match="data.root is not set"):
        _find(None)
    with pytest.raises(UserError, match="no LibriTTS subset folders"):
        _find(corpus.parent)  # the folder above LibriTTS/
    with pytest.raises(UserError, match="subset `train-clean-360` not found; subsets in data.root: "
                                        "dev-clean, test-clean, train-clean-100, train-other-500"):
        _find(corpus, subsets=["train-clean-360"])
    with pytest.raises(ConfigError, match="not a LibriTTS subset"):
        _find(corpus, subsets=["clean"])
    with pytest.raises(ConfigError, match="data.subsets is empty"):
        _find(corpus, subsets=[])
    with pytest.raises(ConfigError, match="data.text_field=raw"):
        _find(corpus, text_field="raw")
    (corpus / "dev-other").mkdir()
    with pytest.raises(UserError, match="dev-other: no <speaker>/<chapter>/<utt>.wav files"):
        _find(corpus, subsets=["dev-other"])
