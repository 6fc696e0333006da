"""CTC targets from frontend symbols, greedy decoding and the phone error rate on hand examples."""

import pytest
import torch

from ttsframe.tokenizers.s3_asr.ctc import PhoneTable, ctc_loss, edit_distance, greedy_decode, phone_error_rate, phones_only

# "Hello world!" as PhonemizerFrontend gives it (see ttsframe/text/phonemes.py)
HELLO = ["h", "ə", "l", "ˈ", "oʊ", " ", "w", "ˈ", "ɜː", "l", "d", "!"]


def test_word_boundaries_punctuation_and_stress_are_dropped():
    assert phones_only(HELLO) == ["h", "ə", "l", "oʊ", "w", "ɜː", "l", "d"]
    assert phones_only(["ˌ", "a", ",", " ", "b", "-", "c", "?"]) == ["a", "b", "c"]


def test_phone_table_ids_start_after_the_blank():
    table = PhoneTable.from_sequences([HELLO, ["ð", "ə"]])
    assert table.phones == tuple(sorted({"h", "ə", "l", "oʊ", "w", "ɜː", "d", "ð"}))
    assert table.n_symbols == 9
    ids = table.encode(HELLO)
    assert min(ids) == 1 and len(ids) == 8
    assert table.decode(ids) == phones_only(HELLO)
    with pytest.raises(KeyError, match="θ"):
        table.encode(["θ", "ɪ", "n"])


def test_edit_distance_and_phone_error_rate_by_hand():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1  # deletion
    assert edit_distance([1, 2, 3], [1, 2, 4, 3]) == 1  # insertion
    assert edit_distance([1, 2, 3], [3, 2, 1]) == 2  # two substitutions
    assert edit_distance([], [5, 6]) == 2 and edit_distance([5, 6], []) == 2
    assert edit_distance("kitten", "sitting") == 3
    # corpus level: (0 + 1 + 4) edits over (3 + 2 + 4) reference phones
    refs, hyps = [[1, 2, 3], [4, 5], [6, 7, 8, 9]], [[1, 2, 3], [4], []]
    assert phone_error_rate(refs, hyps) == pytest.approx(5 / 9)
    assert phone_error_rate([[1, 2]], [[3, 4, 5, 6]]) == 2.0  # insertions can push it past 1
    with pytest.raises(ValueError):
        phone_error_rate([[1]], [])


def test_greedy_decode_merges_repeats_and_removes_blanks():
    frames = [[0, 3, 3, 0, 3, 5, 5, 0, 9], [2, 2, 0, 0, 4, 4, 4, 4, 4]]  # best class per frame
    logits = torch.nn.functional.one_hot(torch.tensor(frames), num_classes=10).float()  # (2, 9, 10)
    assert greedy_decode(logits, torch.tensor([9, 5])) == [[3, 3, 5, 9], [2, 4]]


def test_ctc_loss_is_low_for_the_right_alignment_and_high_for_a_wrong_one():
    frames = torch.tensor([[0, 3, 0, 5, 5, 0]])
    logits = 10 * torch.nn.functional.one_hot(frames, num_classes=6).float()  # (1, 6, 6)
    right = ctc_loss(logits, torch.tensor([6]), [[3, 5]])
    wrong = ctc_loss(logits, torch.tensor([6]), [[4, 2]])
    assert right < 0.01 < 5 < wrong
