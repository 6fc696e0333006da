"""VCTK: English speakers with various accents, ~400 sentences each.

VCTK-Corpus-0.92:             wav48_silence_trimmed/<spk>/<spk>_<nnn>_<mic>.flac
older VCTK-Corpus:            wav48/<spk>/<spk>_<nnn>.wav
both:                         txt/<spk>/<spk>_<nnn>.txt, speaker-info.txt

The test split holds whole speakers (`test_speakers`, unseen in training: zero-shot
evaluation); the other speakers' utterances go to dev/train by a hash of their id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_prep.common import CorpusConfig, hash_split, read_transcript, require_root
from ttsframe.data.manifest import Candidate
from ttsframe.errors import ConfigError, UserError

HINT = "the VCTK-Corpus-0.92 (or VCTK-Corpus) folder holding txt/ and wav48_silence_trimmed/ (or wav48/)"
MICS = ("mic1", "mic2")


@dataclass
class Config(CorpusConfig):
    mic: str = "mic1"  # mic1 | mic2 (VCTK-Corpus-0.92 only; the older release has one)
    # Held-out speakers -> test split; a mix of genders and accents.
    test_speakers: list[str] = field(
        default_factory=lambda: ["p225", "p226", "p234", "p238", "p245", "p248", "p302", "p326"]
    )
    test_fraction: float = 0.0  # share of the other speakers' utterances also put in test


def find(cfg: Config) -> list[Candidate]:
    """Lists every recording of the chosen microphone with its transcript (or why it has none)."""
    if cfg.mic not in MICS:
        raise ConfigError(f"data.mic={cfg.mic}: expected one of {', '.join(MICS)}")
    root = require_root(cfg, HINT).absolute()
    if not (root / "txt").is_dir():
        raise UserError(f"data.root={cfg.root}: no txt/ folder there; point data.root at {HINT}")
    recordings = _recordings(root, cfg.mic)
    _check_test_speakers(cfg.test_speakers, {speaker for speaker, _, _ in recordings})
    candidates = []
    for speaker, utt_id, audio in recordings:
        text, problem = read_transcript(root / "txt" / speaker / f"{utt_id}.txt")
        if speaker in cfg.test_speakers:
            split = "test"
        else:
            split = hash_split(utt_id, cfg.dev_fraction, cfg.test_fraction)
        candidates.append(Candidate(utt_id, str(audio), text, speaker, split, language=cfg.language, problem=problem))
    return sorted(candidates, key=lambda c: c.id)


def _recordings(root: Path, mic: str) -> list[tuple[str, str, Path]]:
    """(speaker, utterance id, audio path) of every recording, for either release's layout."""
    if (root / "wav48_silence_trimmed").is_dir():
        folder, pattern, suffix = root / "wav48_silence_trimmed", f"*/*_{mic}.flac", f"_{mic}"
    elif (root / "wav48").is_dir():
        folder, pattern, suffix = root / "wav48", "*/*.wav", ""
    else:
        raise UserError(f"data.root={root}: no wav48_silence_trimmed/ or wav48/ there; point data.root at {HINT}")
    found = [(p.parent.name, p.stem.removesuffix(suffix), p) for p in sorted(folder.glob(pattern))]
    if not found:
        raise UserError(f"{folder}: no {pattern} files; is the corpus fully extracted?")
    return found


def _check_test_speakers(test_speakers: list[str], speakers: set[str]) -> None:
    unknown = sorted(set(test_speakers) - speakers)
    if unknown:
        some = ", ".join(sorted(speakers)[:12]) + (", ..." if len(speakers) > 12 else "")
        raise ConfigError(f"data.test_speakers: {', '.join(unknown)} not in the corpus (speakers: {some})")
