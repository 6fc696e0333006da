"""The built-in corpus: multi-speaker English synthesised locally, so the pipeline runs offline.

Voices are espeak-ng voice variants (the library of the `espeakng-loader` wheel) with their own
pitch and rate, plus Debian's flite voices where the `flite` binary is installed. Train voices
speak overlapping subsets of the train sentences and all dev sentences; held-out voices never
appear in train or dev and speak the test sentences only (unseen speakers for zero-shot
prompts). Sentences come from a small grammar (`builtin_text`): test and dev sentences are the
head of its list, train sentences a phonetically balanced selection (`builtin_select`) from a
pool of POOL_PER_SENTENCE candidates per train sentence after them, so every phone of the
en-us inventory occurs >= 20 times in train. The selection is cached beside the audio.

The audio is cached under `<cache_dir>/builtin/<hash of every setting>/`, one 16-bit mono wav
per utterance written atomically, with a completion marker: a re-run costs nothing, a killed
run resumes, and the same config gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tqdm import tqdm

from data_prep import builtin_synth
from data_prep.builtin_synth import Job, Voice
from data_prep.builtin_select import DIPHONE_TARGET, PHONE_TARGET, PHONE_WEIGHT, select
from data_prep.builtin_text import sentences
from data_prep.common import CorpusConfig
from ttsframe.data.manifest import Candidate
from ttsframe.errors import UserError
from ttsframe.text.phonemes import STRESS_MARKS, PhonemizerFrontend
from ttsframe.utils.atomic import write_json

FORMAT_VERSION = 2  # bump when the synthesis or the plan changes in a way the settings don't show
POOL_PER_SENTENCE, MIN_POOL = 10, 400  # candidates for the train selection

# Train voices in the order they are taken (num_train_voices of them); flite ones are skipped
# where flite is not installed or use_flite is false.
TRAIN_VOICES = [
    Voice("en-us-m3", "espeak", "en-us+m3", "espeak American male 3", pitch=45, rate=165),
    Voice("en-us-f3", "espeak", "en-us+f3", "espeak American female 3", pitch=55, rate=175),
    Voice("flite-slt", "flite", "slt", "flite American female (CMU ARCTIC slt)"),
    Voice("en-gb-m1", "espeak", "en+m1", "espeak British male 1", pitch=40, rate=160),
    Voice("en-us-f1", "espeak", "en-us+f1", "espeak American female 1", pitch=60, rate=185, pitch_range=60),
    Voice("flite-awb", "flite", "awb", "flite Scottish male (CMU ARCTIC awb)"),
    Voice("en-us-m7", "espeak", "en-us+m7", "espeak American male 7", pitch=35, rate=150, pitch_range=40),
    Voice("en-gb-f4", "espeak", "en+f4", "espeak British female 4", pitch=50, rate=170),
    Voice("flite-kal16", "flite", "kal16", "flite American male (diphone kal16)"),
    Voice("en-us-m2", "espeak", "en-us+m2", "espeak American male 2", pitch=55, rate=190),
    Voice("en-us-annie", "espeak", "en-us+Annie", "espeak American female Annie", pitch=50, rate=170),
    Voice("en-nyc-m4", "espeak", "en-us-nyc+m4", "espeak New York male 4", pitch=50, rate=180, pitch_range=65),
    Voice("en-rp-f5", "espeak", "en-gb-x-rp+f5", "espeak British RP female 5", pitch=45, rate=160),
    Voice("en-sc-m6", "espeak", "en-gb-scotland+m6", "espeak Scottish male 6", pitch=45, rate=170),
    Voice("en-us-f2", "espeak", "en-us+f2", "espeak American female 2", pitch=65, rate=165),
    Voice("en-us-m5", "espeak", "en-us+m5", "espeak American male 5", pitch=50, rate=200, pitch_range=35),
    Voice("en-us-linda", "espeak", "en-us+linda", "espeak American female Linda", pitch=45, rate=175),
    Voice("en-us-m8", "espeak", "en-us+m8", "espeak American male 8", pitch=40, rate=155),
    Voice("en-us-andy", "espeak", "en-us+Andy", "espeak American male Andy", pitch=45, rate=170),
    Voice("en-gb-andrea", "espeak", "en+Andrea", "espeak British female Andrea", pitch=55, rate=165),
    Voice("en-us-gene", "espeak", "en-us+Gene", "espeak American male Gene", pitch=40, rate=160),
    Voice("en-us-belinda", "espeak", "en-us+belinda", "espeak American female Belinda", pitch=60, rate=175),
    Voice("en-rp-benjamin", "espeak", "en-gb-x-rp+benjamin", "espeak British RP male Benjamin", pitch=45, rate=165),
    Voice("en-us-anika", "espeak", "en-us+anika", "espeak American female Anika", pitch=55, rate=180),
    Voice("en-us-david", "espeak", "en-us+david", "espeak American male David", pitch=50, rate=185),
    Voice("en-us-shelby", "espeak", "en-us+shelby", "espeak American female Shelby", pitch=50, rate=160),
    Voice("en-gb-edward", "espeak", "en+edward", "espeak British male Edward", pitch=40, rate=175),
    Voice("en-us-steph", "espeak", "en-us+steph", "espeak American female Steph", pitch=65, rate=170),
    Voice("en-sc-ian", "espeak", "en-gb-scotland+ian", "espeak Scottish male Ian", pitch=50, rate=165),
    Voice("en-us-grandma", "espeak", "en-us+grandma", "espeak American female Grandma", pitch=45, rate=150),
    Voice("en-nyc-john", "espeak", "en-us-nyc+john", "espeak New York male John", pitch=45, rate=190),
    Voice("en-us-jacky", "espeak", "en-us+Jacky", "espeak American male Jacky", pitch=55, rate=175),
    Voice("en-us-m4", "espeak", "en-us+m4", "espeak American male 4", pitch=40, rate=170, pitch_range=60),
    Voice("en-gb-f1", "espeak", "en+f1", "espeak British female 1", pitch=55, rate=160),
    Voice("en-us-michael", "espeak", "en-us+Michael", "espeak American male Michael", pitch=45, rate=180),
    Voice("en-us-f4", "espeak", "en-us+f4", "espeak American female 4", pitch=50, rate=190, pitch_range=40),
    # used in place of the three flite voices where flite is missing
    Voice("en-us-travis", "espeak", "en-us+travis", "espeak American male Travis", pitch=45, rate=175),
    Voice("en-gb-max", "espeak", "en+max", "espeak British male Max", pitch=50, rate=170),
    Voice("en-us-quincy", "espeak", "en-us+quincy", "espeak American male Quincy", pitch=40, rate=165),
]
# Held-out voices (num_test_voices of them, in this order): test split only.
TEST_VOICES = [
    Voice("en-us-alicia", "espeak", "en-us+Alicia", "espeak American female Alicia", pitch=50, rate=170),
    Voice("en-us-robert", "espeak", "en-us+robert", "espeak American male Robert", pitch=45, rate=175),
    Voice("flite-rms", "flite", "rms", "flite American male (CMU ARCTIC rms)"),
    Voice("en-gb-aunty", "espeak", "en+aunty", "espeak British female Aunty", pitch=55, rate=165),
    Voice("en-029-paul", "espeak", "en-029+paul", "espeak Caribbean male Paul", pitch=45, rate=180),
]


@dataclass
class Config(CorpusConfig):
    """Sizes of the built-in corpus. `root` is not used; `num_workers` is also the number of
    synthesis worker processes."""

    corpus: str = "builtin"
    sample_rate: int = 24000  # Hz of the wavs written (espeak gives 22050, flite 16000)
    cache_dir: str | None = None  # default $TTSFRAME_CACHE, else ~/.cache/ttsframe
    num_train_voices: int = 36  # also the dev voices
    num_test_voices: int = 3  # held out: test split only
    num_train_sentences: int = 1200  # distinct train sentences, shared out among the train voices
    train_sentences_per_voice: int = 34
    num_dev_sentences: int = 4  # each spoken by every train voice
    num_test_sentences: int = 20  # each spoken by every held-out voice
    use_flite: bool = True  # add flite voices where the `flite` binary is installed
    seed: int = 0  # sentences and their assignment to voices
    # One voice (a name of TRAIN_VOICES or TEST_VOICES) reads every split: train, dev and test
    # sentences stay disjoint, and no voice is held out (num_*_voices are then unused).
    voice: str | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    voice: Voice
    text: str
    split: str


@dataclass(frozen=True)
class Built:
    folder: Path
    entries: list[Entry]
    synthesized: int  # wavs made by this call (0 when everything was cached)
    seconds: float

    def wav(self, entry: Entry) -> Path:
        return self.folder / "wavs" / f"{entry.id}.wav"


_told_about_flite = False


def flite_voices(cfg: Config) -> frozenset[str]:
    """The flite voices this build may use: none when use_flite is false or flite is missing."""
    global _told_about_flite
    if not cfg.use_flite:
        return frozenset()
    found = builtin_synth.flite_voices()
    wanted = {v.spec for v in TRAIN_VOICES + TEST_VOICES if v.engine == "flite"}
    if not wanted <= found and not _told_about_flite:
        _told_about_flite = True
        if not found:
            print(f"builtin: no `flite` binary found; using espeak-ng voices only "
                  f"(installing flite, e.g. apt-get install flite, adds {len(wanted)} voices)")
        else:
            print(f"builtin: flite lacks the voices {', '.join(sorted(wanted - found))}; going on without them")
    return found


def pick_voices(cfg: Config, flite: frozenset[str]) -> tuple[list[Voice], list[Voice]]:
    """(train voices, held-out test voices); flite voices only where `flite` has them. With
    `cfg.voice`, that one voice is both (it reads the test sentences too)."""
    def usable(voices: list[Voice]) -> list[Voice]:
        return [v for v in voices if v.engine != "flite" or v.spec in flite]

    train, test = usable(TRAIN_VOICES), usable(TEST_VOICES)
    if cfg.voice is not None:
        chosen = [v for v in train + test if v.name == cfg.voice]
        if not chosen:
            flite_note = "" if flite else " (flite voices need the `flite` binary: run `make setup`)"
            raise UserError(f"data.voice={cfg.voice!r} is not a built-in voice{flite_note}; valid: "
                            f"{', '.join(v.name for v in train + test)}")
        return chosen, chosen
    if not 1 <= cfg.num_train_voices <= len(train):
        raise UserError(f"data.num_train_voices={cfg.num_train_voices}: between 1 and {len(train)} "
                        f"with the flite voices found ({', '.join(sorted(flite)) or 'none'})")
    if not 0 <= cfg.num_test_voices <= len(test):
        raise UserError(f"data.num_test_voices={cfg.num_test_voices}: between 0 and {len(test)}")
    return train[:cfg.num_train_voices], test[:cfg.num_test_voices]


def plan(cfg: Config, flite: frozenset[str] = frozenset()) -> list[Entry]:
    """Every utterance of the corpus, sorted by id. Sentence i has the number i in its ids."""
    if not 1 <= cfg.train_sentences_per_voice <= cfg.num_train_sentences:
        raise UserError(f"data.train_sentences_per_voice={cfg.train_sentences_per_voice}: between 1 and "
                        f"data.num_train_sentences={cfg.num_train_sentences}")
    if cfg.num_dev_sentences < 0 or cfg.num_test_sentences < 0:
        raise UserError("data.num_dev_sentences and data.num_test_sentences must be >= 0")
    train_voices, test_voices = pick_voices(cfg, flite)
    n_test, n_dev, n_train = cfg.num_test_sentences, cfg.num_dev_sentences, cfg.num_train_sentences
    pool_size = max(MIN_POOL, POOL_PER_SENTENCE * n_train)
    texts = sentences(n_test + n_dev + pool_size, cfg.seed)
    test_ids = range(n_test)
    dev_ids = range(n_test, n_test + n_dev)
    train_ids = [n_test + n_dev + i for i in select_train(cfg, texts[n_test + n_dev:])]
    random.Random(f"builtin-assign-{cfg.seed}").shuffle(train_ids)

    def entry(voice: Voice, i: int, split: str) -> Entry:
        return Entry(f"builtin_{voice.name}_{i:04d}", voice, texts[i], split)

    entries = [entry(v, i, "test") for v in test_voices for i in test_ids]
    entries += [entry(v, i, "dev") for v in train_voices for i in dev_ids]
    # Voice k reads a window of the shuffled train sentences starting at k/V of the way round:
    # every sentence is read when V * per_voice >= n_train, neighbours overlap beyond that.
    for k, voice in enumerate(train_voices):
        start = k * n_train // len(train_voices)
        window = (train_ids[(start + j) % n_train] for j in range(cfg.train_sentences_per_voice))
        entries += [entry(voice, i, "train") for i in window]

    by_split = {s: {e.text for e in entries if e.split == s} for s in ("train", "dev", "test")}
    assert not by_split["train"] & (by_split["dev"] | by_split["test"]), "dev/test sentence in train"
    assert not by_split["dev"] & by_split["test"], "sentence in both dev and test"
    seen_voices = {e.voice.name for e in entries if e.split != "test"}
    assert cfg.voice is not None or not seen_voices & {v.name for v in test_voices}, "held-out voice in train or dev"
    return sorted(entries, key=lambda e: e.id)


def select_train(cfg: Config, pool: list[str]) -> list[int]:
    """Indices into `pool` of the balanced train sentences, cached under the corpus cache."""
    frontend = PhonemizerFrontend(language="en-us")
    key_info = {"format": FORMAT_VERSION, "pool": pool, "n": cfg.num_train_sentences,
                "frontend": frontend.settings(), "select": [PHONE_TARGET, PHONE_WEIGHT, DIPHONE_TARGET]}
    key = hashlib.sha1(json.dumps(key_info, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_root(cfg) / "selections" / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())["picked"]
    picked = select(frontend.symbols(pool), cfg.num_train_sentences, STRESS_MARKS)
    write_json(path, {"picked": picked, "pool": len(pool)})
    return picked


def cache_root(cfg: Config) -> Path:
    root = cfg.cache_dir or os.environ.get("TTSFRAME_CACHE") or "~/.cache/ttsframe"
    return Path(root).expanduser() / "builtin"


def settings(cfg: Config, entries: list[Entry]) -> dict:
    """Everything the audio depends on; its hash names the cache folder."""
    try:
        espeak = version("espeakng-loader")
    except PackageNotFoundError:
        raise UserError("the built-in corpus needs espeak-ng from the espeakng-loader wheel: "
                        "run `make setup` (or pip install espeakng-loader)") from None
    return {
        "format": FORMAT_VERSION,
        "sample_rate": cfg.sample_rate,
        "espeak": espeak,
        "flite": builtin_synth.flite_version() if any(e.voice.engine == "flite" for e in entries) else None,
        "finish": [builtin_synth.PAD_SECONDS, builtin_synth.TARGET_RMS_DB, builtin_synth.MAX_PEAK],
        "utterances": [[e.id, e.split, e.text, asdict(e.voice)] for e in entries],
    }


def build(cfg: Config) -> Built:
    """Synthesises what is not cached yet; returns where the corpus lies."""
    if cfg.sample_rate <= 0:
        raise UserError(f"data.sample_rate={cfg.sample_rate}: must be positive")
    started = time.perf_counter()
    entries = plan(cfg, flite_voices(cfg))
    info = settings(cfg, entries)
    key = hashlib.sha1(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]
    built = Built(cache_root(cfg) / key, entries, 0, 0.0)
    marker = built.folder / "done.json"
    missing = [e for e in entries if not built.wav(e).is_file()]
    if marker.is_file() and not missing:
        print(f"builtin: {len(entries)} utterances cached in {built.folder}")
        return built
    wav_dir = built.folder / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    for leftover in [*wav_dir.glob(".*.tmp"), *wav_dir.glob(".flite.*.wav")]:  # from a killed run
        leftover.unlink(missing_ok=True)
    write_json(built.folder / "corpus.json", info)
    print(f"builtin: synthesising {len(missing)} of {len(entries)} utterances into {built.folder}")
    jobs = [Job(e.voice, e.text, str(built.wav(e)), cfg.sample_rate, _seed(e.id)) for e in missing]
    with tqdm(total=len(jobs), desc="builtin", unit="utt", mininterval=1.0) as progress:
        builtin_synth.synthesize(jobs, cfg.num_workers, progress)
    seconds = time.perf_counter() - started
    write_json(marker, {"utterances": len(entries), "seconds": round(seconds, 2)})
    return Built(built.folder, entries, len(missing), seconds)


def _seed(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:7], 16) + 1


def find(cfg: Config) -> list[Candidate]:
    """Builds the corpus (or reuses the cache); one candidate per utterance, sorted by id."""
    built = build(cfg)
    return [
        Candidate(id=e.id, audio=str(built.wav(e)), text=e.text, speaker=e.voice.name,
                  split=e.split, language=cfg.language)
        for e in built.entries
    ]


def describe_voices() -> str:
    """A Markdown table of every voice: name, engine, settings and role."""
    rows = ["| voice | engine | espeak voice / flite voice | pitch | rate | role |", "|---|---|---|---|---|---|"]
    for role, voices in (("train + dev", TRAIN_VOICES), ("held out (test)", TEST_VOICES)):
        for v in voices:
            pitch, rate = (v.pitch, v.rate) if v.engine == "espeak" else ("-", "-")
            rows.append(f"| `{v.name}` | {v.engine} | `{v.spec}` | {pitch} | {rate} | {role} |")
    return "\n".join(rows)
