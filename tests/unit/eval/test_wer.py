"""WER/CER: normalisation of both sides, edit counts, corpus rates as total edits / total words."""

import pytest

from ttsframe.eval.wer import error_rates, normalize_transcript


def test_normalisation_spells_out_numbers_symbols_and_abbreviations():
    # normalize_english reads 751 as "seven hundred fifty one" (no "and").
    assert normalize_transcript("Room 751 is in the garden, next to the bottle.") == \
        normalize_transcript("room seven hundred fifty-one is in the garden next to the bottle") == \
        "room seven hundred fifty one is in the garden next to the bottle"
    assert normalize_transcript("Dr. Smith paid $5.") == "doctor smith paid five dollars"
    assert normalize_transcript("'Well,' she said — it's \"fine\"; 50% & more!") == \
        "well she said it's fine fifty percent and more"


def test_identical_transcript_after_normalisation_scores_zero():
    rates = error_rates(["Dr. Smith paid $5."], ["doctor smith paid five dollars"])
    assert rates.wer == rates.cer == 0.0
    assert (rates.substitutions, rates.deletions, rates.insertions, rates.reference_words) == (0, 0, 0, 5)
    assert rates.per_utterance == [{"wer": 0.0, "cer": 0.0,
                                    "reference_normalized": "doctor smith paid five dollars",
                                    "hypothesis_normalized": "doctor smith paid five dollars"}]


def test_one_deleted_word_out_of_n():
    reference = "the quick brown fox jumps over the lazy dog"  # 9 words
    rates = error_rates([reference], ["the quick brown fox jumps over the dog"])
    assert rates.wer == 1 / 9
    assert (rates.substitutions, rates.deletions, rates.insertions) == (0, 1, 0)
    assert rates.cer == 5 / len(reference)  # "lazy " is gone


def test_substitution_and_insertion_counts():
    rates = error_rates(["the cat sat on the mat"], ["the bat sat on the red mat"])
    assert (rates.substitutions, rates.deletions, rates.insertions, rates.reference_words) == (1, 0, 1, 6)
    assert rates.wer == 2 / 6


def test_empty_hypothesis_is_all_deletions():
    rates = error_rates(["hello there world"], [" ... "])
    assert rates.wer == rates.cer == 1.0
    assert (rates.substitutions, rates.deletions, rates.insertions) == (0, 3, 0)
    assert rates.per_utterance[0]["hypothesis_normalized"] == ""


def test_corpus_rate_is_total_edits_over_total_words():
    references = ["one two", "a b c d e f g h"]  # 2 + 8 words
    hypotheses = ["one", "a b c d e f g h"]  # 1 deletion in the short one
    rates = error_rates(references, hypotheses)
    assert [u["wer"] for u in rates.per_utterance] == [0.5, 0.0]
    assert rates.wer == 1 / 10  # the mean of the per-utterance rates would be 0.25
    assert rates.reference_words == 10


def test_empty_reference_and_length_mismatch_are_errors():
    with pytest.raises(ValueError, match="reference 1"):
        error_rates(["fine", "?!"], ["fine", "what"])
    with pytest.raises(ValueError):
        error_rates(["a", "b"], ["a"])
    with pytest.raises(ValueError):
        error_rates([], [])
