"""BpeFrontend: text -> the tokens of a local BPE tokenizer (`transformers.AutoTokenizer`).

CosyVoice 2's LM reads Qwen's byte-level BPE ids (its `CosyVoice-BlankEN` folder), with special
tokens of its own added (`configs/text/bpe_cosyvoice2.yaml`: `[breath]`, `<laughter>`, ...), as
CosyVoice's `QwenTokenizer` adds them. The symbols are the tokenizer's tokens (`Ġthe`, `[breath]`)
and the vocabulary is the tokenizer's own, in its id order (`vocabulary()`,
`Vocabulary.of_tokenizer`), so a symbol's id is the id the tokenizer gives it. The tokenizer is
read from a local folder only (`local_files_only`): nothing is downloaded.

The settings hold a fingerprint of the tokenizer's vocabulary, not its path, so a copy of the
folder (inside a release) is the same frontend.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ttsframe.errors import UserError
from ttsframe.text.inventory import Inventory
from ttsframe.text.normalize import normalizer_for

# What AutoTokenizer reads from a tokenizer folder (copied into releases); config.json too, whose model
# type can pick the tokenizer class (Qwen2's adds <|endoftext|>).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json", "config.json")


class BpeFrontend:
    """Normalized text -> BPE tokens of the tokenizer in `path`, with `special_tokens` added.

    Args:
        path: a local tokenizer folder (Qwen's: vocab.json + merges.txt + tokenizer_config.json).
        language: picks the text normalisation (`normalizer_for`); case is kept.
        special_tokens: tokens added as special (never split), in order (CosyVoice 2's list).
    """

    def __init__(self, path: str | os.PathLike, language: str = "en", special_tokens: list[str] = ()):
        self.path, self.language, self.special_tokens = Path(path), language, list(special_tokens)
        if not self.path.is_dir():
            raise UserError(f"BPE tokenizer folder {self.path} not found (text.tokenizer: e.g. the CosyVoice-BlankEN "
                            "folder of a CosyVoice 2 download)")
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise UserError(f"{self.path}: not a tokenizer folder transformers can read ({str(e)[:200]})") from None
        if self.special_tokens:
            self.tokenizer.add_special_tokens({"additional_special_tokens": self.special_tokens})  # as CosyVoice
        tokens = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        if any(t is None for t in tokens):
            raise UserError(f"{self.path}: the tokenizer's ids are not 0..{len(self.tokenizer) - 1} without gaps")
        self.tokens = tokens
        digest = hashlib.sha256(json.dumps(tokens, ensure_ascii=False).encode()).hexdigest()[:16]
        self._settings = {"frontend": "bpe", "language": language, "tokenizer_sha256": digest,
                          "special_tokens": self.special_tokens}

    def normalize(self, text: str) -> str:
        return normalizer_for(self.language)(text)

    def symbols(self, texts: list[str]) -> list[list[str]]:
        return [self.tokenizer.tokenize(self.normalize(text)) for text in texts]

    def symbols_cached(self, texts: list[str], cache_path: str | os.PathLike) -> list[list[str]]:
        return self.symbols(texts)  # as fast as reading a cache

    def inventory(self) -> Inventory | None:
        return None

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def vocabulary(self):
        """The tokenizer's own vocabulary: every token at its id (`Vocabulary.of_tokenizer`)."""
        from ttsframe.text.vocab import Vocabulary

        return Vocabulary.of_tokenizer(self.tokens, self.settings())

    def save(self, folder: str | os.PathLike) -> Path:
        """Copies the tokenizer's files into `folder` (a release's); returns it."""
        import shutil

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in TOKENIZER_FILES:
            if (self.path / name).is_file() and (self.path / name).resolve() != (folder / name).resolve():
                shutil.copyfile(self.path / name, folder / name)
        return folder
