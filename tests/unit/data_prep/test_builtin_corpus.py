"""The built-in corpus: speech-like audio at the asked rate, distinct voices, disjoint splits,
byte-identical rebuilds, and a cache that resumes a partial build."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from data_prep import builtin, builtin_synth
from data_prep.builtin import Config, build, find, plan
from data_prep.builtin_select import units
from data_prep.builtin_text import MAX_WORDS, MIN_WORDS, sentences
from ttsframe.config import load_group
from ttsframe.config.loading import CONFIG_DIR
from ttsframe.errors import UserError
from ttsframe.text import STRESS_MARKS, PhonemizerFrontend
from ttsframe.text.inventory import coverage

# 3 train voices (espeak m3, espeak f3, flite slt where installed), 2 held-out: 16 utterances.
SMALL = dict(num_train_voices=3, num_test_voices=2, num_train_sentences=6, train_sentences_per_voice=3,
             num_dev_sentences=1, num_test_sentences=2, sample_rate=16000)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Config, builtin.Built]:
    cfg = Config(cache_dir=str(tmp_path_factory.mktemp("cache")), **SMALL)
    return cfg, build(cfg)


def median_f0(wav: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch (Hz) over the loud 40 ms frames, searched in 70-400 Hz."""
    frame, lo, hi = int(0.04 * sr), int(sr / 400), int(sr / 70)
    loud = np.abs(wav).max() * 0.3
    f0 = []
    for start in range(0, len(wav) - frame, frame // 2):
        x = wav[start:start + frame]
        if np.sqrt(np.mean(x ** 2)) < loud * 0.3:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[frame - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            f0.append(sr / lag)
    return float(np.median(f0))


def test_audio_is_mono_speech_at_the_asked_rate(small):
    cfg, built = small
    assert built.synthesized == len(built.entries) == 16
    for entry in built.entries:
        info = sf.info(str(built.wav(entry)))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 < info.duration < 10.0, entry.id
        wav, _ = sf.read(str(built.wav(entry)), dtype="float32")
        rms_db = 20 * np.log10(np.sqrt(np.mean(wav ** 2)))
        assert rms_db > -30.0, f"{entry.id}: too quiet ({rms_db:.1f} dBFS)"
        assert np.abs(wav).max() < 1.0


def test_candidates_point_at_the_cache(small):
    cfg, built = small
    candidates = find(cfg)  # cached: nothing is synthesised again
    ids = [c.id for c in candidates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for c in candidates:
        assert not set(c.id) & {".", "/", " "} and c.id == f"builtin_{c.speaker}_{c.id.rsplit('_', 1)[1]}"
        assert Path(c.audio).is_file() and Path(c.audio).parent.parent.parent.parent == Path(cfg.cache_dir)
        assert c.text and c.split in ("train", "dev", "test") and c.problem is None
    counts = Counter(c.split for c in candidates)
    assert counts == {"train": 9, "dev": 3, "test": 4}


def test_voices_differ(small):
    cfg, built = small
    dev = {e.voice.name: built.wav(e) for e in built.entries if e.split == "dev"}
    male, female = (sf.read(str(dev[name]), dtype="float32")[0] for name in ("en-us-m3", "en-us-f3"))
    f0_male, f0_female = median_f0(male, 16000), median_f0(female, 16000)
    assert 70 < f0_male < 160 and f0_female > 1.4 * f0_male, (f0_male, f0_female)
    # Every train voice reads the same dev sentence: no two recordings are alike.
    assert len({Path(p).read_bytes() for p in dev.values()}) == len(dev) == cfg.num_train_voices


FLITE = frozenset({"slt", "awb", "kal16", "rms"})


@pytest.mark.parametrize("with_flite", [True, False])
def test_default_plan_has_disjoint_splits_and_unseen_test_voices(with_flite):
    cfg = Config()
    entries = plan(cfg, FLITE if with_flite else frozenset())
    texts, voices = defaultdict(set), defaultdict(set)
    for e in entries:
        texts[e.split].add(e.text)
        voices[e.split].add(e.voice.name)
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    assert len(texts["train"]) == cfg.num_train_sentences, "every train sentence is read"
    assert voices["dev"] == voices["train"] and len(voices["train"]) == cfg.num_train_voices >= 8
    assert not voices["test"] & voices["train"] and len(voices["test"]) == cfg.num_test_voices
    assert any(v.startswith("flite-") for v in voices["train"]) == with_flite
    per_voice = defaultdict(set)
    for e in entries:
        if e.split == "train":
            per_voice[e.voice.name].add(e.text)
    assert all(len(t) == cfg.train_sentences_per_voice for t in per_voice.values())
    assert len({frozenset(t) for t in per_voice.values()}) == cfg.num_train_voices, "each voice its own subset"
    per_test_voice = Counter(e.voice.name for e in entries if e.split == "test")
    assert set(per_test_voice.values()) == {cfg.num_test_sentences}
    assert len({e.id for e in entries}) == len(entries)


def test_default_train_text_covers_the_phone_inventory(tmp_path):
    """Every phone and stress mark of the en-us inventory >= 20 times in the distinct train
    sentences alone, the common diphones of a large pool >= 3 times; the selection is cached
    and the same from a fresh cache."""
    cfg = Config(cache_dir=str(tmp_path / "a"))
    entries = plan(cfg)
    assert plan(Config(cache_dir=str(tmp_path / "b"))) == entries == plan(cfg)
    assert len(list((tmp_path / "a" / "builtin" / "selections").glob("*.json"))) == 1
    train = sorted({e.text for e in entries if e.split == "train"})
    frontend = PhonemizerFrontend()
    found = coverage(frontend.inventory(), frontend.symbols(train), min_count=20)
    assert not found.rare and not found.outside, found.summary()

    def diphones(texts):
        return Counter(u for seq in frontend.symbols(texts) for u, c in units(seq, STRESS_MARKS).items()
                       for _ in range(c) if isinstance(u, tuple))

    pool, picked = diphones(sentences(3000, seed=7)), diphones(train)
    common, total = [], 0
    for d, c in pool.most_common():  # the diphones that make up 95% of the pool's diphone tokens
        common.append(d)
        total += c
        if total >= 0.95 * sum(pool.values()):
            break
    assert sum(picked[d] >= 3 for d in common) >= 0.95 * len(common)


def test_sentences_are_varied_and_stable():
    texts = sentences(600, seed=0)
    assert len(set(texts)) == 600 and texts[:100] == sentences(100, seed=0) != sentences(100, seed=1)
    assert all(MIN_WORDS <= len(t.split()) <= MAX_WORDS and t.rstrip('"')[-1] in ".?!" for t in texts)
    assert sum(t.endswith("?") for t in texts) > 60
    assert sum(any(n in t for n in ("hundred", "twenty", "seven")) for t in texts) > 30


def test_rebuild_in_another_cache_is_byte_identical(small, tmp_path):
    cfg, built = small
    other = build(replace(cfg, cache_dir=str(tmp_path), num_workers=1))
    assert other.folder.name == built.folder.name and other.synthesized == len(built.entries)
    for entry in built.entries:
        assert built.wav(entry).read_bytes() == other.wav(entry).read_bytes(), entry.id


def test_resume_synthesises_only_what_is_missing(small, tmp_path):
    cfg, built = small
    shutil.copytree(cfg.cache_dir, tmp_path, dirs_exist_ok=True)
    copy = replace(cfg, cache_dir=str(tmp_path))
    wavs = sorted(p.relative_to(cfg.cache_dir) for p in (built.folder / "wavs").iterdir())
    gone = tmp_path / wavs[5]
    expected = gone.read_bytes()
    gone.unlink()
    stale = gone.parent / f".{gone.name}.abc123.tmp"  # as a killed write leaves it
    stale.write_bytes(b"partial")
    before = {p: (tmp_path / p).stat().st_mtime_ns for p in wavs if tmp_path / p != gone}

    again = build(copy)
    assert again.synthesized == 1 and gone.read_bytes() == expected and not stale.exists()
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in before} == before
    assert build(copy).synthesized == 0


def test_without_flite_uses_espeak_only_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(builtin_synth, "flite_binary", lambda: None)
    monkeypatch.setattr(builtin, "_told_about_flite", False)
    cfg = Config(**SMALL)
    assert builtin.flite_voices(cfg) == builtin.flite_voices(cfg) == frozenset()
    assert capsys.readouterr().out.count("no `flite`") == 1
    train, test = builtin.pick_voices(cfg, frozenset())
    assert all(v.engine == "espeak" for v in train + test) and len(train) == 3
    # A flite without some voice: the others are used.
    train, test = builtin.pick_voices(Config(num_train_voices=10, num_test_voices=3), frozenset({"awb", "rms"}))
    assert [v.name for v in train + test if v.engine == "flite"] == ["flite-awb", "flite-rms"]


@pytest.mark.parametrize("override", [dict(num_train_voices=99), dict(num_test_voices=99),
                                      dict(train_sentences_per_voice=7), dict(sample_rate=0)])
def test_bad_sizes_fail_with_the_key(override, tmp_path):
    with pytest.raises(UserError, match=next(iter(override))):
        build(Config(cache_dir=str(tmp_path), **{**SMALL, **override}))


@pytest.mark.parametrize("choice", ["builtin", "builtin_tiny", "builtin_single"])
def test_configs_load(choice):
    cfg = OmegaConf.to_object(load_group("data", choice))
    assert isinstance(cfg, Config) and cfg.corpus == "builtin"
    header = (CONFIG_DIR / "data" / f"{choice}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# make recipe=valle stage=0")
    if choice == "builtin_tiny":
        assert len(plan(cfg, FLITE)) < 100 and cfg.num_test_voices >= 2 and cfg.num_test_sentences >= 2


def test_voice_table_is_valid():
    names = [v.name for v in builtin.TRAIN_VOICES + builtin.TEST_VOICES]
    assert len(set(names)) == len(names)
    assert not any(set(n) & {".", "/", "_", " "} for n in names)
    assert sum(v.engine == "espeak" for v in builtin.TEST_VOICES) >= 3  # held-out voices without flite
    assert "| `en-us-m3` |" in builtin.describe_voices()


def test_espeak_voices_exist_in_the_wheel():
    """espeak falls back to its default voice on an unknown variant, silently: check the files."""
    import espeakng_loader

    data = Path(espeakng_loader.get_data_path())
    languages = {p.name.lower() for p in (data / "lang").rglob("*") if p.is_file()}
    for voice in builtin.TRAIN_VOICES + builtin.TEST_VOICES:
        if voice.engine == "espeak":
            language, variant = voice.spec.split("+")
            assert language.lower() in languages, voice
            assert (data / "voices" / "!v" / variant).is_file(), voice


def test_building_leaves_phonemizer_in_this_process_alone(tmp_path):
    """Synthesis loads espeak-ng in worker processes only; phonemizer here keeps working."""
    from phonemizer.backend import EspeakBackend

    from ttsframe.text.espeak import configure_espeak

    configure_espeak()
    texts = ["How many photos are there at the library?", "Room seven hundred and fifty-one."]
    backend = EspeakBackend("en-us", with_stress=True, preserve_punctuation=True)
    before = backend.phonemize(texts)
    tiny = dict(SMALL, num_train_voices=1, num_test_voices=0, num_train_sentences=1, train_sentences_per_voice=1,
                num_dev_sentences=0)
    assert build(Config(cache_dir=str(tmp_path), **tiny)).synthesized == 1
    assert backend.phonemize(texts) == before == EspeakBackend("en-us", with_stress=True,
                                                               preserve_punctuation=True).phonemize(texts)


def test_one_voice_reads_every_split_with_disjoint_sentences(tmp_path):
    cfg = Config(cache_dir=str(tmp_path), voice="en-us-f3", num_train_sentences=6, train_sentences_per_voice=6,
                 num_dev_sentences=2, num_test_sentences=3)
    entries = plan(cfg)
    assert {e.voice.name for e in entries} == {"en-us-f3"}
    texts = {split: {e.text for e in entries if e.split == split} for split in ("train", "dev", "test")}
    assert [len(texts[s]) for s in ("train", "dev", "test")] == [6, 2, 3]
    assert not texts["train"] & (texts["dev"] | texts["test"]) and not texts["dev"] & texts["test"]
    with pytest.raises(UserError, match="data.voice='nobody' is not a built-in voice.*valid: en-us-m3"):
        plan(replace(cfg, voice="nobody"))
