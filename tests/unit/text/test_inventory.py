"""Symbol inventories: the en-us phone table matches what espeak-ng emits, vocabularies hold the
whole inventory and say what training never saw, coverage counts are exact."""

import pytest

from data_prep.builtin_text import sentences
from ttsframe.errors import UserError
from ttsframe.text import CharFrontend, PhonemizerFrontend, Vocabulary
from ttsframe.text.inventory import EN_US_PHONES, coverage


@pytest.fixture(scope="module")
def frontend():
    return PhonemizerFrontend()


def test_every_phone_comes_from_its_example_word(frontend):
    words = list(EN_US_PHONES.values())
    for (phone, word), symbols in zip(EN_US_PHONES.items(), frontend.symbols(words)):
        assert phone in symbols, f"{word!r} -> {symbols}: no {phone!r}"


def test_espeak_emits_nothing_outside_the_inventory(frontend):
    texts = sentences(600) + ["The museum's usual treasure: a beige button, a croissant and Bach!",
                              "Would you measure the vision of a curious tourist? I'm sure."]
    symbols = frontend.symbols(texts)
    inventory = frontend.inventory()
    assert not coverage(inventory, symbols).outside
    assert {s for seq in symbols for s in seq} <= inventory.symbols


def test_inventory_follows_the_frontend_options():
    plain = PhonemizerFrontend(with_stress=False, preserve_punctuation=False).inventory()
    assert "ˈ" in PhonemizerFrontend().inventory().units and "ˈ" not in plain.symbols
    assert "." not in plain.symbols and " " in plain.symbols
    assert PhonemizerFrontend(language="de").inventory() is None
    chars = CharFrontend().inventory()
    assert set("az'-") <= set(chars.units) and "A" not in chars.symbols and "?" in chars.extra
    assert "A" in CharFrontend(lowercase=False).inventory().units and CharFrontend(language="fr").inventory() is None


def test_vocabulary_holds_the_inventory_and_lists_what_training_never_saw(frontend, tmp_path):
    inventory = frontend.inventory()
    train = frontend.symbols(["Hello world.", "A cat sat."])
    vocab = Vocabulary.build(train, frontend.settings(), inventory.symbols)
    seen = {s for seq in train for s in seq}
    assert inventory.symbols | seen <= set(vocab.symbols)
    assert set(vocab.untrained) == inventory.symbols - seen and "ʒ" in vocab.untrained and "l" not in vocab.untrained
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab
    # a word the train text lacks now encodes; a symbol outside the inventory is still an error
    [museum] = frontend.symbols(["museum"])
    assert vocab.unk_id not in vocab.encode(museum)
    with pytest.raises(UserError, match="'ж'"):
        vocab.encode(["ж"], text="жук")


def test_coverage_counts_and_names_the_rare_units(frontend):
    inventory = frontend.inventory()
    found = coverage(inventory, [["k", "æ", "t"], ["k", "ʒ", "ж"]], min_count=2)
    assert found.counts["k"] == 2 and found.counts["ʒ"] == 1 and found.counts["θ"] == 0
    assert list(found.rare.values()) == sorted(found.rare.values()) and found.rare["θ"] == 0
    assert "k" not in found.rare and found.rare["ʒ"] == 1 and found.outside == {"ж": 1}
    line = found.summary()
    assert "fewer than 2 times in train" in line and "'ʒ' 1" in line and "outside the inventory: 'ж' 1" in line
    assert coverage(inventory, [[u] * 3 for u in inventory.units], 3).summary().startswith(
        f"all {len(inventory.units)} inventory symbols occur >= 3 times")
