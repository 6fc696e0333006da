"""A supervised speech tokenizer: an ASR encoder with an FSQ bottleneck, trained with CTC
(CosyVoice's S3 tokenizer, Du et al. 2024; CosyVoice 2 swapped its VQ for FSQ).

    log-mel (B, T, 80) at 100 Hz
      -> conv subsampling (stride 2 -> 50 Hz, or 4 -> 25 Hz)      (B, T', D)
      -> `layers_before` pre-norm transformer blocks (bidirectional)
      -> FSQ bottleneck: the token ids                              (B, T') in [0, prod(levels))
      -> `layers_after` transformer blocks -> linear CTC head       (B, T', n_symbols)
The CTC loss (ctc.py) makes the tokens carry the phones; the layers after the bottleneck are
dropped at tokenization time. A LayerNorm ends the subsampling: without it the encoder's frames
at init all round to one code and CTC never leaves its plateau (see ConvSubsampling). Padding
never reaches a valid frame: the convolutions see zeros past each row's length (what a row alone
sees) and attention masks padded keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ttsframe.modules.transformer import Transformer, TransformerConfig
from ttsframe.tokenizers.fsq import FSQ

SUBSAMPLING = {2: (1, 2), 4: (2, 2)}  # total stride -> strides of the two convolutions


@dataclass
class S3AsrConfig:
    n_symbols: int  # CTC output classes, blank (id 0) included
    n_mels: int = 80
    d_model: int = 512
    n_heads: int = 8
    layers_before: int = 6  # encoder blocks before the bottleneck
    layers_after: int = 6  # blocks between the bottleneck and the CTC head
    ffn_dim: int = 2048
    subsample: int = 4  # 2 -> 50 Hz tokens, 4 -> 25 Hz
    fsq_levels: tuple[int, ...] = (3,) * 8  # 6561 codes
    dropout: float = 0.1
    cmn: bool = False  # subtract each utterance's mean log-mel per band first (cepstral mean normalisation)

    def __post_init__(self):
        if self.subsample not in SUBSAMPLING:
            raise ValueError(f"subsample {self.subsample} not supported; valid: {', '.join(map(str, SUBSAMPLING))}")
        if self.n_symbols < 2:
            raise ValueError(f"n_symbols {self.n_symbols}: CTC needs the blank and at least one symbol")
        self.fsq_levels = tuple(self.fsq_levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    def transformer_config(self, n_layers: int) -> TransformerConfig:
        return TransformerConfig(d_model=self.d_model, n_heads=self.n_heads, n_layers=n_layers,
                                 ffn_dim=self.ffn_dim, dropout=self.dropout, causal=False)


def lengths_mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    """lengths (B,) -> (B, n) bool, True at the first lengths[i] positions of row i."""
    return torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]


def positions_of(x: torch.Tensor) -> torch.Tensor:
    """x (B, T, D) -> rotary position ids (B, T): 0..T-1 in every row."""
    return torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)


class ConvSubsampling(nn.Module):
    """Two convolutions (kernel 3, padding 1) with GELU: (B, T, n_mels) -> (B, T', D).

    A stride-s convolution maps L frames to (L - 1) // s + 1; inputs past each row's length are
    zeroed before every convolution, so a padded row gives the frames of the row alone.
    """

    def __init__(self, n_mels: int, d_model: int, strides: tuple[int, int]):
        super().__init__()
        self.strides = strides
        self.convs = nn.ModuleList(
            nn.Conv1d(n_mels if i == 0 else d_model, d_model, kernel_size=3, stride=s, padding=1)
            for i, s in enumerate(strides)
        )
        self.act = nn.GELU()
        # Unit-scale frames into the residual stream: without it the convolutions' small outputs
        # (std ~0.1) are swamped by the blocks' near-constant branches at init, every frame looks
        # alike after the encoder, and CTC sits on its blank plateau.
        self.norm = nn.LayerNorm(d_model)

    def output_length(self, n):
        """Frames out for n frames in; n an int or a long tensor."""
        for s in self.strides:
            n = (n - 1) // s + 1
        return n

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, T, n_mels), lengths (B,) -> (x (B, T', D), lengths (B,))."""
        x = mel.transpose(1, 2)  # (B, n_mels, T)
        for conv, s in zip(self.convs, self.strides):
            x = x.masked_fill(~lengths_mask(lengths, x.shape[-1])[:, None, :], 0.0)
            x = self.act(conv(x))  # (B, D, ceil(T / s))
            lengths = (lengths - 1) // s + 1
        return self.norm(x.transpose(1, 2)), lengths


def mean_normalize(mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's mean over its valid frames subtracted per band (B, T, n_mels); padding stays 0.
    A voice's spectral tilt and a synthesiser's channel are mostly such per-band offsets."""
    valid = lengths_mask(lengths, mel.shape[1])[..., None].to(mel.dtype)  # (B, T, 1)
    mean = (mel * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)  # (B, 1, n_mels)
    return (mel - mean) * valid


class S3AsrModel(nn.Module):
    """Conv subsampling -> transformer -> FSQ -> transformer -> CTC head (see the module doc)."""

    def __init__(self, config: S3AsrConfig):
        super().__init__()
        self.config = config
        self.subsampling = ConvSubsampling(config.n_mels, config.d_model, SUBSAMPLING[config.subsample])
        self.encoder = Transformer(config.transformer_config(config.layers_before))
        self.fsq = FSQ(config.fsq_levels, dim=config.d_model)
        self.decoder = Transformer(config.transformer_config(config.layers_after))
        self.head = nn.Linear(config.d_model, config.n_symbols)

    def output_length(self, n_frames):
        """Tokens (and CTC frames) for n_frames mel frames; an int or a long tensor."""
        return self.subsampling.output_length(n_frames)

    def _encode(self, mel: torch.Tensor, lengths: torch.Tensor | None):
        """mel (B, T, n_mels) -> (hidden (B, T', D) before the bottleneck, lengths (B,), mask (B, T'))."""
        if lengths is None:
            lengths = torch.full((mel.shape[0],), mel.shape[1], dtype=torch.long, device=mel.device)
        if self.config.cmn:
            mel = mean_normalize(mel, lengths.to(mel.device))
        x, lengths = self.subsampling(mel, lengths.to(mel.device))  # (B, T', D)
        mask = lengths_mask(lengths, x.shape[1])  # (B, T')
        return self.encoder(x, positions_of(x), mask), lengths, mask

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None, quantize: bool = True) -> dict:
        """CTC logits and the tokens.

        Args:
            mel: (B, T, n_mels) features (features.LogMel), padded past `lengths`.
            lengths: (B,) valid frames per row; None: all T.
            quantize: False skips the rounding (the warm-up path); `indices` are then the codes
                rounding would give, for watching the codebook during the warm-up.

        Returns:
            logits (B, T', n_symbols), lengths (B,) valid frames of logits and indices, and
            indices (B, T') long (0 past a row's length).
        """
        hidden, lengths, mask = self._encode(mel, lengths)  # (B, T', D)
        bottleneck, indices = self.fsq(hidden, quantize=quantize)  # (B, T', D), (B, T')
        logits = self.head(self.decoder(bottleneck, positions_of(bottleneck), mask))  # (B, T', n_symbols)
        return {"logits": logits, "lengths": lengths, "indices": indices.masked_fill(~mask, 0)}

    def tokenize(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, T, n_mels) -> indices (B, T') long, 0 past each row's output_length(lengths[i])."""
        hidden, _, mask = self._encode(mel, lengths)
        return self.fsq.tokenize(hidden).masked_fill(~mask, 0)
