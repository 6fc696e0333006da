"""The `bpe` text frontend: a local tokenizer folder read with AutoTokenizer (nothing downloaded), special
tokens added in order, the tokenizer's own vocabulary (its ids, no specials of ours) that survives a save,
settings that do not depend on where the folder is, and the tokenize stage keeping that vocabulary."""

import shutil

import pytest
from cosyvoice2_release import write_tokenizer

from ttsframe.config.schema import TextConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.text import Vocabulary, build_frontend

SPECIALS = ["[breath]", "<laughter>"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("bpe"))


def test_symbols_are_tokens_and_ids_are_the_tokenizers(folder, tmp_path):
    from transformers import AutoTokenizer

    frontend = build_frontend(TextConfig(frontend="bpe", tokenizer=str(folder), special_tokens=SPECIALS))
    vocab = frontend.vocabulary()
    [symbols] = frontend.symbols(["the cat [breath] sat, 2 times."])  # numbers spelled out, case kept
    assert "[breath]" in symbols and "Ġs" in symbols and vocab.specials == () and vocab.unk_id is None
    reference = AutoTokenizer.from_pretrained(str(folder))
    reference.add_special_tokens({"additional_special_tokens": SPECIALS})
    assert vocab.encode(symbols) == reference(["the cat [breath] sat, two times."])["input_ids"][0]
    assert len(vocab) == len(reference) and vocab.symbols[vocab.encode(["[breath]"])[0]] == "[breath]"
    with pytest.raises(UserError, match="not in the vocabulary"):
        vocab.encode(["Q"], unknown="unk")  # no <unk> to map it to

    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab
    copy = frontend.save(tmp_path / "copy")
    assert build_frontend(TextConfig(frontend="bpe", tokenizer=str(copy), special_tokens=SPECIALS)).settings() == \
        frontend.settings()


def test_a_missing_folder_or_setting_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="text.tokenizer"):
        build_frontend(TextConfig(frontend="bpe"))
    with pytest.raises(UserError, match="not found"):
        build_frontend(TextConfig(frontend="bpe", tokenizer=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a tokenizer folder"):
        build_frontend(TextConfig(frontend="bpe", tokenizer=str(tmp_path / "empty")))


def test_the_tokenize_stage_keeps_the_tokenizers_vocabulary(folder, tmp_path):
    from ttsframe.pipeline.tokenize import build_vocabulary

    frontend = build_frontend(TextConfig(frontend="bpe", tokenizer=str(folder)))
    vocab = build_vocabulary(frontend, [["Ġa"]], 20, tmp_path)
    assert vocab == frontend.vocabulary() == Vocabulary.load(tmp_path / "vocab.json")
    shutil.rmtree(tmp_path / "copy", ignore_errors=True)
