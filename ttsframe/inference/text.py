"""Text -> model input ids at synthesis, shared by every family's synthesizer."""

from __future__ import annotations

import torch

from ttsframe.errors import UserError


def encode_symbols(vocab, symbols: list[str], text: str) -> torch.Tensor:
    """Symbols (L,) -> ids (L,) long; UserError naming the symbols the model never saw."""
    unknown = sorted({s for s in symbols if s not in vocab})
    if unknown:
        raise UserError(f"cannot synthesize {text!r}: the model has no symbol for {', '.join(map(repr, unknown))} "
                        "(its vocabulary holds its text frontend's inventory for the language and the symbols of its training "
                        "text); rephrase or spell them out")
    return torch.tensor(vocab.encode(symbols, unknown="error", text=text), dtype=torch.long)


def text_token_ids(frontend, vocab, texts: list[str]) -> list[torch.Tensor]:
    """Target texts -> per text (L_i,) ids; fails on empty texts and symbols outside the vocabulary."""
    tokens = []
    for text, symbols in zip(texts, frontend.symbols(texts)):
        if not symbols:
            raise UserError(f"text {text!r} has nothing to say (no symbols after normalization)")
        tokens.append(encode_symbols(vocab, symbols, text))
    return tokens
