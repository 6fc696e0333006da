"""Text frontend: normalisation, phonemes or characters, symbol cache, vocabulary."""

from ttsframe.text.base import PUNCTUATION, WORD_BOUNDARY, TextFrontend
from ttsframe.text.cache import PhonemeCache
from ttsframe.text.espeak import EspeakInfo, configure_espeak
from ttsframe.text.frontend import FRONTENDS, CharFrontend, build_frontend
from ttsframe.text.normalize import normalize_basic, normalize_english, normalizer_for
from ttsframe.text.phonemes import STRESS_MARKS, PhonemizerFrontend
from ttsframe.text.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary

__all__ = [
    "BOS", "EOS", "FRONTENDS", "PAD", "PUNCTUATION", "SPECIALS", "STRESS_MARKS", "UNK", "WORD_BOUNDARY",
    "CharFrontend", "EspeakInfo", "PhonemeCache", "PhonemizerFrontend", "TextFrontend", "Vocabulary",
    "build_frontend", "configure_espeak", "normalize_basic", "normalize_english", "normalizer_for",
]
