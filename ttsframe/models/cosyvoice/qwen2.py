"""A Qwen2 decoder from `transformers` behind the call of `ttsframe.modules.transformer.Transformer`.

CosyVoice 2's LM is Qwen2.5-0.5B. `Qwen2Backbone` wraps `transformers.Qwen2Model` so that the
speech LM drives it as it drives our own transformer: ``backbone(x, positions, padding_mask=,
cache=)`` returns hidden states after the final norm, ``new_cache()`` an empty cache. The model's
own `DynamicCache` holds keys and values; `Qwen2Cache` adds the padding mask of the cached
positions (transformers wants the 2D mask over past + new positions at every call).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, Qwen2Config, Qwen2Model

# transformers 5 renamed `past_key_values` to `cache`; take whichever this version has.
_CACHE_KWARG = "cache" if "cache" in inspect.signature(Qwen2Model.forward).parameters else "past_key_values"
# What must agree between a checkpoint and the backbone for its weights to mean the same.
_ARCHITECTURE = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "hidden_act", "rms_norm_eps")


def _rope_theta(config: Qwen2Config) -> float:
    parameters = getattr(config, "rope_parameters", None) or {}
    return float(parameters.get("rope_theta", getattr(config, "rope_theta", 10_000.0)))


class Qwen2Cache:
    """transformers' DynamicCache plus the (B, T) padding mask of every cached position."""

    def __init__(self, config: Qwen2Config):
        takes_config = "config" in inspect.signature(DynamicCache.__init__).parameters
        self.past = DynamicCache(config=config) if takes_config else DynamicCache()
        self.padding_mask: torch.Tensor | None = None  # (B, T) bool, True at real positions

    def extend_padding_mask(self, new_mask: torch.Tensor) -> torch.Tensor:
        """Appends the (B, t) mask of the new positions; returns the (B, T) mask of all of them."""
        new_mask = new_mask.to(torch.bool)
        self.padding_mask = new_mask if self.padding_mask is None else torch.cat([self.padding_mask, new_mask], 1)
        return self.padding_mask


class Qwen2Backbone(nn.Module):
    """Randomly initialised `Qwen2Model`; its ``embed_tokens`` is the LM's text embedding.

    Args:
        config: a `Qwen2Config` (vocab_size = the text vocabulary).
    """

    def __init__(self, config: Qwen2Config):
        super().__init__()
        self.model = Qwen2Model(config)

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.model.embed_tokens

    def new_cache(self, max_length: int | None = None) -> Qwen2Cache:
        """An empty growing cache (``max_length`` is accepted for the common call and unused)."""
        return Qwen2Cache(self.model.config)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        cache: Qwen2Cache | None = None,
    ) -> torch.Tensor:
        """`Transformer.forward`'s call without ``cond``: x (B, T, D), positions (B, T), padding_mask
        (B, T) True at real positions -> (B, T, D) hidden states after the final RMS norm."""
        if padding_mask is None:
            padding_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        attention_mask = padding_mask if cache is None else cache.extend_padding_mask(padding_mask)
        kwargs = {} if cache is None else {_CACHE_KWARG: cache.past}
        out = self.model(inputs_embeds=x, attention_mask=attention_mask.long(), position_ids=positions,
                         use_cache=cache is not None, **kwargs)
        return out.last_hidden_state

    def load_pretrained(self, path: str | Path) -> list[str]:
        """Copies a local Qwen2 checkpoint's weights (a `Qwen2Model` or `Qwen2ForCausalLM` folder).

        The token embedding is copied only when the checkpoint's vocabulary has the size of this
        backbone's text vocabulary (CosyVoice 2 reads Qwen's BPE tokens; phoneme ids do not match).

        Returns:
            The backbone's parameter names left as they were (the embedding, when skipped).

        Raises:
            FileNotFoundError: ``path`` is not a folder (nothing is ever downloaded).
            ValueError: the checkpoint's architecture differs from this backbone's.
        """
        if not Path(path).is_dir():
            raise FileNotFoundError(f"no Qwen2 checkpoint folder at {path}")
        source = Qwen2Model.from_pretrained(str(path), local_files_only=True)
        ours, theirs = self.model.config, source.config
        wrong = [f"{name}: checkpoint {getattr(theirs, name)} vs {getattr(ours, name)}"
                 for name in _ARCHITECTURE if getattr(theirs, name) != getattr(ours, name)]
        if _rope_theta(theirs) != _rope_theta(ours):
            wrong.append(f"rope theta: checkpoint {_rope_theta(theirs)} vs {_rope_theta(ours)}")
        if wrong:
            raise ValueError(f"the Qwen2 checkpoint at {path} does not fit this backbone: " + "; ".join(wrong))
        state = source.state_dict()
        skipped = []
        if state["embed_tokens.weight"].shape != self.model.embed_tokens.weight.shape:
            del state["embed_tokens.weight"]
            skipped.append("embed_tokens.weight")
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if set(missing) - set(skipped) or unexpected:
            raise ValueError(f"checkpoint at {path}: missing {missing}, unexpected {unexpected}")
        return skipped


def qwen2_config(*, n_text: int, d_model: int, n_heads: int, n_kv_heads: int, n_layers: int, ffn_dim: int,
                 dropout: float, rope_base: float, norm_eps: float) -> Qwen2Config:
    """The `Qwen2Config` of a backbone: no sliding window, SDPA attention."""
    return Qwen2Config(
        vocab_size=n_text,
        hidden_size=d_model,
        intermediate_size=ffn_dim,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        attention_dropout=dropout,
        rope_theta=rope_base,
        rms_norm_eps=norm_eps,
        max_position_embeddings=32_768,
        use_sliding_window=False,
        attn_implementation="sdpa",
    )
