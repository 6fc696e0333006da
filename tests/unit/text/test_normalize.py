import pytest

from ttsframe.text.normalize import cardinal, normalize_basic, normalize_english, normalizer_for, ordinal, year


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"), (100, "one hundred"),
    (123, "one hundred twenty three"), (1000, "one thousand"), (1001, "one thousand one"),
    (2_500_000, "two million five hundred thousand"), (10**12, "one trillion"), (-3, "minus three"),
])
def test_cardinal(n, words):
    assert cardinal(n) == words


@pytest.mark.parametrize("n, words", [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"),
    (21, "twenty first"), (100, "one hundredth"), (103, "one hundred third"),
])
def test_ordinal(n, words):
    assert ordinal(n) == words


@pytest.mark.parametrize("n, words", [
    (1984, "nineteen eighty four"), (1905, "nineteen oh five"), (1900, "nineteen hundred"),
    (2000, "two thousand"), (2008, "two thousand eight"), (2010, "twenty ten"),
])
def test_year(n, words):
    assert year(n) == words


@pytest.mark.parametrize("text, expected", [
    ("In 1984 we had 3 cats.", "In nineteen eighty four we had three cats."),
    ("He came 1st, she 22nd.", "He came first, she twenty second."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("1,000,000 people", "one million people"),
    ("It is -5 outside", "It is minus five outside"),
    ("the 1990s", "the nineteen nineties"),
    ("agent 007", "agent zero zero seven"),
    ("mp3 and A4", "mp three and A four"),
    ("at 10:30 or 9:05 or 12:00", "at ten thirty or nine oh five or twelve o'clock"),
    ("$3.50 and $1 and $0.05", "three dollars fifty cents and one dollar and five cents"),
    ("$1.5 million", "one point five million dollars"),
    ("50% off", "fifty percent off"),
    ("Tom & Jerry", "Tom and Jerry"),
])
def test_english_numbers_and_symbols(text, expected):
    assert normalize_english(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith and Dr. Jones", "Mister Smith and Doctor Jones"),
    ("St. Patrick lived on Main St.", "Saint Patrick lived on Main street."),
    ("apples, pears, etc.", "apples, pears, et cetera."),
    ("No. 5 vs. No. 6", "number five versus number six"),
    ("fruit, e.g. apples", "fruit, for example apples"),
])
def test_english_abbreviations(text, expected):
    assert normalize_english(text) == expected


def test_basic_unifies_unicode_quotes_dashes_and_whitespace():
    text = "  “Quoted”\t‘single’ — en–dash,  a - b…\u200b ﬁne ＡＢ\n"
    assert normalize_basic(text) == "\"Quoted\" 'single' — en—dash, a — b... fine AB"


def test_basic_leaves_numbers_alone():
    assert normalize_basic("5 % & 3") == "5 % & 3"


def test_normalizer_for_language():
    assert normalizer_for("en-us") is normalize_english
    assert normalizer_for("en-GB") is normalize_english
    assert normalizer_for("fr-fr") is normalize_basic


def test_english_is_idempotent():
    text = "On Jan 5th, 1999, Mr. O'Neil paid $12.40 (50%) & left at 10:05."
    once = normalize_english(text)
    assert normalize_english(once) == once
