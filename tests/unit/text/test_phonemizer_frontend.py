import json

import pytest

from ttsframe.config import load_group
from ttsframe.config.schema import TextConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.text import (PUNCTUATION, STRESS_MARKS, WORD_BOUNDARY, CharFrontend, PhonemeCache,
                           PhonemizerFrontend, build_frontend, configure_espeak)
from ttsframe.text import phonemes
from ttsframe.text.phonemes import split_phonemes

EN = PhonemizerFrontend(language="en-us")


def test_espeak_comes_from_the_wheel():
    info = configure_espeak()
    assert "espeakng_loader" in info.library and "espeakng_loader" in info.data_path
    assert configure_espeak() is info  # idempotent
    assert info.version.count(".") == 2


def test_hello_world_phones_stress_and_boundary():
    (symbols,) = EN.symbols(["Hello world"])
    assert {"h", "ə", "l", "oʊ", "w", "ɜː", "d"} <= set(symbols)
    assert "ˈ" in symbols and symbols.count(WORD_BOUNDARY) == 1
    assert symbols[0] != WORD_BOUNDARY and symbols[-1] != WORD_BOUNDARY


def test_without_stress_has_no_stress_marks():
    (symbols,) = PhonemizerFrontend(with_stress=False).symbols(["Hello wonderful world"])
    assert not STRESS_MARKS & set(symbols)


def test_punctuation_kept_as_symbols_or_dropped():
    (kept,) = EN.symbols(["Hello, world!"])
    assert kept[-1] == "!" and "," in kept
    (dropped,) = PhonemizerFrontend(preserve_punctuation=False).symbols(["Hello, world!"])
    assert not PUNCTUATION & set(dropped)


def test_order_kept_around_empty_texts():
    # phonemizer's punctuation restoration misaligns a list holding an empty line.
    texts = ["Hello world!", "", 'He said "no" (twice).', "Yes."]
    assert EN.symbols(texts) == [EN.symbols([t])[0] for t in texts]
    assert EN.symbols(texts)[1] == []


def test_deterministic_across_instances():
    texts = ["The quick brown fox, in 1984.", "Dr. Smith paid $5."]
    assert EN.symbols(texts) == PhonemizerFrontend(language="en-us").symbols(texts) == EN.symbols(texts)


def test_language_switch_flags_removed():
    (symbols,) = PhonemizerFrontend(language="fr-fr").symbols(["Le football, le weekend."])
    assert not any("(" in s or ")" in s for s in symbols)


def test_empty_phonemization_names_the_text():
    with pytest.raises(UserError, match=r"'\|'"):
        EN.symbols(["|"])


def test_unknown_language():
    with pytest.raises(UserError, match="xx-yy"):
        PhonemizerFrontend(language="xx-yy").symbols(["hello"])


def test_split_phonemes():
    assert split_phonemes('h|ə|l|ˈoʊ, "w|ˈɜː|l|d"!') == [
        "h", "ə", "l", "ˈ", "oʊ", ",", " ", '"', "w", "ˈ", "ɜː", "l", "d", '"', "!"]
    assert split_phonemes("|ˈi l|ə- |") == ["ˈ", "i", " ", "l", "ə", "-"]


def test_parallel_matches_serial(monkeypatch):
    monkeypatch.setattr(phonemes, "PARALLEL_MIN_TEXTS", 3)
    texts = [f"Sentence number {i}, said the {i}th speaker." for i in range(12)]
    assert PhonemizerFrontend(num_workers=2).symbols(texts) == EN.symbols(texts)


def test_cache_hit_avoids_phonemizing(tmp_path, monkeypatch):
    calls = []
    real = phonemes._phonemize

    def counting(options, texts):
        calls.append(list(texts))
        return real(options, texts)

    monkeypatch.setattr(phonemes, "_phonemize", counting)
    path = tmp_path / "cache.jsonl"
    first = PhonemeCache(path, EN).symbols(["Hello world.", "Good  morning.", "Hello world."])
    assert calls == [["Hello world.", "Good  morning."]]
    again = PhonemeCache(path, EN).symbols(["Good morning.", "Hello world.", "Good night."])
    assert calls[1:] == [["Good night."]]  # same normalized text hits
    assert again[:2] == [first[1], first[0]]
    PhonemeCache(path, PhonemizerFrontend(with_stress=False)).symbols(["Hello world."])
    assert calls[2:] == [["Hello world."]]  # other settings miss
    assert len(PhonemeCache(path, EN)) == 4


@pytest.mark.parametrize("frontend", [EN, CharFrontend()], ids=["phonemizer", "chars"])
def test_symbols_cached_matches_symbols(tmp_path, frontend):
    texts = ["Hello there.", "General Kenobi!"]
    path = tmp_path / "cache" / "symbols.jsonl"
    assert frontend.symbols_cached(texts, path) == frontend.symbols(texts)
    assert frontend.symbols_cached(texts[::-1], path) == frontend.symbols(texts[::-1])
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_cache_survives_a_line_cut_short(tmp_path):
    path = tmp_path / "cache.jsonl"
    PhonemeCache(path, EN).symbols(["One."])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "abc", "symb')
    cache = PhonemeCache(path, EN)
    assert len(cache) == 1
    cache.symbols(["Two."])
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[-1:]]
    assert rows[0]["symbols"] == EN.symbols(["Two."])[0]
    assert len(PhonemeCache(path, EN)) == 2


def test_char_frontend():
    assert CharFrontend().symbols(["Hi, Dr. Li!"]) == [list("hi, doctor li!")]
    assert CharFrontend(lowercase=False, preserve_punctuation=False).symbols(["Hi, 2 (you)!"]) == [list("Hi two you")]


def test_build_frontend_from_schema_and_configs():
    assert isinstance(build_frontend(TextConfig(frontend="chars")), CharFrontend)
    assert build_frontend(load_group("text", "phonemes_en")) == PhonemizerFrontend(language="en-us", num_workers=2)
    assert build_frontend(load_group("text", "chars")) == CharFrontend()
    with pytest.raises(ConfigError, match="unknown text frontend `graphemes`; valid: phonemizer, chars"):
        build_frontend(TextConfig(frontend="graphemes"))
