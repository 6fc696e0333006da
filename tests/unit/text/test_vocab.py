import json

import pytest

from ttsframe.errors import UserError
from ttsframe.text import BOS, EOS, PAD, SPECIALS, UNK, PhonemizerFrontend, Vocabulary

SEQS = [["h", "ə", "l", "ˈ", "oʊ"], [" ", "w", "ˈ", "ɜː", "!"]]


def test_specials_and_sorted_symbols():
    vocab = Vocabulary.build(SEQS)
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (PAD, UNK, BOS, EOS)
    assert vocab.symbols[:4] == list(SPECIALS)
    assert vocab.symbols[4:] == sorted({s for seq in SEQS for s in seq})
    assert len(vocab) == 4 + 9
    assert Vocabulary.build(reversed(SEQS)) == vocab  # order of the data does not matter


def test_encode_decode_round_trip():
    vocab = Vocabulary.build(SEQS)
    for seq in SEQS:
        ids = vocab.encode(seq)
        assert all(i >= 4 for i in ids)
        assert vocab.decode(ids) == seq


def test_unknown_symbols_error_names_them_and_the_fix():
    vocab = Vocabulary.build(SEQS)
    with pytest.raises(UserError) as e:
        vocab.encode(["h", "ʁ", "ə", "x"], text="hrex")
    msg = str(e.value)
    assert "'ʁ' at 1" in msg and "'x' at 3" in msg and "'hrex'" in msg
    assert "train split" in msg and 'unknown="unk"' in msg


def test_unknown_symbols_to_unk():
    vocab = Vocabulary.build(SEQS)
    assert vocab.encode(["h", "ʁ"], unknown="unk") == [vocab.encode(["h"])[0], UNK]
    with pytest.raises(ValueError):
        vocab.encode(["h"], unknown="skip")


def test_decode_rejects_ids_outside():
    vocab = Vocabulary.build(SEQS)
    with pytest.raises(ValueError):
        vocab.decode([len(vocab)])
    with pytest.raises(ValueError):
        vocab.decode([-1])


def test_save_load_round_trip_with_settings(tmp_path):
    settings = PhonemizerFrontend().settings()
    vocab = Vocabulary.build(SEQS, settings)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["settings"]["espeak_version"] == settings["espeak_version"]
    assert data["settings"]["language"] == "en-us"
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.encode(SEQS[1]) == vocab.encode(SEQS[1])
    loaded.check_settings(settings)
    with pytest.raises(UserError, match="with_stress"):
        loaded.check_settings(PhonemizerFrontend(with_stress=False).settings())


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"symbols": ["a"]}', encoding="utf-8")
    with pytest.raises(UserError, match="not a ttsframe vocabulary"):
        Vocabulary.load(path)
