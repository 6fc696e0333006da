"""Text normalisation before phonemization: unicode, punctuation, abbreviations, numbers.

`normalize_basic` is language-independent (unicode NFKC, one form of each quote and dash,
no control characters, collapsed whitespace). `normalize_english` also spells out numbers,
abbreviations and the symbols `&`, `%`, `$`, `£`, `€` as English words. `normalizer_for`
picks one for a language code. All functions are pure: str -> str.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

_PUNCT_TABLE = str.maketrans({
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑−", "-"),  # hyphens and the minus sign
    **dict.fromkeys("‒–―", "—"),  # figure, en and horizontal-bar dashes -> em dash
})

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}

_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor",
    "jr": "junior", "sr": "senior", "capt": "captain", "gen": "general", "lt": "lieutenant",
    "col": "colonel", "sgt": "sergeant", "maj": "major", "gov": "governor", "rev": "reverend",
    "hon": "honorable", "mt": "mount", "ave": "avenue", "co": "company", "ltd": "limited",
    "inc": "incorporated", "dept": "department", "approx": "approximately", "vs": "versus",
    "etc": "et cetera",
}
_ABBREVIATION_RE = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", re.IGNORECASE)
_SAINT_RE = re.compile(r"\bSt\.(?=\s+[A-Z])")
_STREET_RE = re.compile(r"\bst\.", re.IGNORECASE)
_NUMBER_ABBREV_RE = re.compile(r"\bno\.\s*(?=\d)", re.IGNORECASE)
_LATIN_RE = ((re.compile(r"\be\.g\.", re.IGNORECASE), "for example"),
             (re.compile(r"\bi\.e\.", re.IGNORECASE), "that is"))

_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents")}
_CURRENCY_RE = re.compile(r"([$£€])\s?(\d+)(?:\.(\d+))?(\s(?:thousand|million|billion|trillion)\b)?")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_MINUS_RE = re.compile(r"(?<![\w)])-(?=\d)")
_NUMBER_RE = re.compile(r"(?<!\d)(\d+)(?:\.(\d+))?(?:(st|nd|rd|th|s)\b)?")


def normalize_basic(text: str) -> str:
    """Unicode NFKC, one quote and dash form, control characters dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT_TABLE)
    text = "".join(c for c in text if c.isspace() or not unicodedata.category(c).startswith("C"))
    text = re.sub(r"\s+-\s+", " — ", f" {text} ")  # a spaced hyphen is a dash
    return re.sub(r"\s+", " ", text).strip()


def normalize_english(text: str) -> str:
    """`normalize_basic`, then abbreviations, symbols and numbers spelled out in English."""
    text = normalize_basic(text)
    text = _expand_abbreviations(text)
    text = _CURRENCY_RE.sub(_currency, _THOUSANDS_RE.sub("", text))
    text = re.sub(r"\s*%", " percent", text).replace("&", " and ")
    text = _TIME_RE.sub(_time, text)
    text = _NUMBER_RE.sub(_number, _MINUS_RE.sub("minus ", text))
    return re.sub(r"\s+", " ", text).strip()


def normalizer_for(language: str) -> Callable[[str], str]:
    """English rules for `en*` languages (e.g. en-us, en-gb), the basic ones otherwise."""
    return normalize_english if language.lower().startswith("en") else normalize_basic


def cardinal(n: int) -> str:
    """123 -> 'one hundred twenty three'; past the trillions, digit by digit."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + cardinal(n % 100))
    if n >= 1000 * _SCALES[0][0]:
        return digits(str(n))
    scale, name = next((s, w) for s, w in _SCALES if n >= s)
    rest = n % scale
    return cardinal(n // scale) + " " + name + ("" if rest == 0 else " " + cardinal(rest))


def ordinal(n: int) -> str:
    """21 -> 'twenty first'."""
    *head, last = cardinal(n).split(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def year(n: int) -> str:
    """1984 -> 'nineteen eighty four', 1905 -> 'nineteen oh five', 2008 -> 'two thousand eight'."""
    if n % 1000 == 0 or 2000 < n < 2010:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    return cardinal(high) + (" oh " if low < 10 else " ") + cardinal(low)


def digits(s: str) -> str:
    """'007' -> 'zero zero seven'."""
    return " ".join(_ONES[int(d)] for d in s)


def _expand_abbreviations(text: str) -> str:
    text = _NUMBER_ABBREV_RE.sub("number ", text)
    for pattern, words in _LATIN_RE:
        text = pattern.sub(words, text)
    text = _SAINT_RE.sub("Saint", text)
    text = _STREET_RE.sub(lambda m: "street" + ("." if m.end() == len(m.string) else ""), text)

    def expand(m: re.Match) -> str:
        words = _ABBREVIATIONS[m.group(1).lower()]
        if m.group(1)[0].isupper():
            words = words[0].upper() + words[1:]
        return words + ("." if m.end() == len(m.string) else "")  # keep a sentence-final stop

    return _ABBREVIATION_RE.sub(expand, text)


def _currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m.group(1)]
    whole, frac, scale = int(m.group(2)), m.group(3), m.group(4)
    if scale:  # "$1.5 million" -> "one point five million dollars"
        amount = cardinal(whole) + (" point " + digits(frac) if frac else "")
        return f"{amount}{scale} {many}"
    cents = int((frac or "0")[:2].ljust(2, "0"))
    parts = [f"{cardinal(whole)} {one if whole == 1 else many}"] if whole or not cents else []
    if cents:
        parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    return " ".join(parts)


def _time(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours > 24 or minutes > 59:
        return m.group(0)
    if minutes == 0:
        return cardinal(hours) + " o'clock"
    return cardinal(hours) + (" oh " if minutes < 10 else " ") + cardinal(minutes)


def _number(m: re.Match) -> str:
    whole, frac, suffix = m.group(1), m.group(2), m.group(3)
    n = int(whole)
    if frac is not None:
        words = cardinal(n) + " point " + digits(frac)
    elif suffix in ("st", "nd", "rd", "th"):
        words = ordinal(n)
    elif len(whole) > 1 and whole[0] == "0":
        words = digits(whole)
    elif 1000 < n < 3000:
        words = year(n)
    else:
        words = cardinal(n)
    if suffix == "s":  # "1990s" -> "nineteen nineties"
        words = words[:-1] + "ies" if words.endswith("y") else words + ("es" if words.endswith("x") else "s")
    before, after = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
    return (" " if before.isalpha() else "") + words + (" " if after.isalnum() else "")
