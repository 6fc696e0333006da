"""CosyVoice's text-speech language model (Du et al., 2024: CosyVoice 1 and 2).

The LM reads text ids and predicts supervised speech tokens autoregressively. Each row is packed
back to back, padding only at one end (see `ttsframe.modules.packing`), with one position count:

    [sos, spk?, text ..., task, speech ...]       targets: speech ..., eos  (text is not predicted)

style "cosyvoice1": own embeddings, a non-causal text encoder, the speaker embedding as the token
after sos, our `Transformer` (causal, RoPE) as the LM. style "cosyvoice2": a Qwen2 decoder from
`transformers` (its token embedding embeds the text), no speaker embedding.

CosyVoice 2's bistream training (``config.bistream``) interleaves blocks of n text : m speech
tokens (5 : 15) for rows with more than m / n speech tokens per text token:

    [sos, t t t t t, s x15, t t t t t, s x15, ..., text rest, task, speech rest]

the last speech token of a full block predicts the fill token, which tells the model to read
more text. In training, each such row is interleaved with probability ``bistream_prob``.

Output ids: 0 .. n_speech-1 speech tokens, n_speech eos, n_speech+1 fill (only with bistream).
With ``config.release_layout`` (CosyVoice 2's released `llm.pt`): n_speech + 3 output ids and
speech-embedding rows whatever the training, eos n_speech, n_speech+1 a second stop id that is never
sampled, fill n_speech+2 (`lm_release.py` reads that file).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.models.cosyvoice.qwen2 import Qwen2Backbone, qwen2_config
from ttsframe.modules.packing import PackedRows, lengths_to_mask, pack_segments, take_segment
from ttsframe.modules.transformer import Transformer, TransformerConfig

STYLES = ("cosyvoice1", "cosyvoice2")
IGNORE = -1  # target of a position that predicts nothing
SOS, TASK = 0, 1  # rows of the special-token table


@dataclass
class LMConfig:
    style: str  # "cosyvoice1" | "cosyvoice2"
    n_text: int  # text vocabulary (phoneme ids, 0 = pad)
    n_speech: int  # speech token vocabulary
    d_model: int = 1024
    n_heads: int = 16
    n_layers: int = 14
    ffn_dim: int = 4096
    dropout: float = 0.1
    n_kv_heads: int | None = None  # cosyvoice2: grouped-query attention; None: n_heads
    text_encoder_layers: int = 0  # cosyvoice1: non-causal layers over the text embeddings
    spk_dim: int = 0  # cosyvoice1: speaker embedding size (192 for CAM++); 0: none
    activation: str = "gelu"  # cosyvoice1 feed-forward: "gelu" or "swiglu"
    rope_base: float = 10_000.0
    norm_eps: float = 1e-5
    bistream: bool = False  # cosyvoice2: interleaved text-speech training rows
    bistream_ratio: tuple[int, int] = (5, 15)  # text : speech tokens per block
    bistream_prob: float = 0.5
    release_layout: bool = False  # cosyvoice2: CosyVoice 2's n_speech + 3 output ids (see the module doc)

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"unknown LM style {self.style!r}; valid: {', '.join(STYLES)}")
        if self.style == "cosyvoice2" and (self.text_encoder_layers or self.spk_dim):
            raise ValueError("text_encoder_layers and spk_dim are cosyvoice1 options; set them to 0")
        if self.n_kv_heads is not None and (self.style == "cosyvoice1" or self.n_heads % self.n_kv_heads):
            raise ValueError(f"n_kv_heads is cosyvoice2's and must divide n_heads, got {self.n_kv_heads}")
        if self.release_layout and self.style != "cosyvoice2":
            raise ValueError("release_layout is CosyVoice 2's output layout: style cosyvoice2 only")
        if min(self.bistream_ratio) < 1 or not 0.0 <= self.bistream_prob <= 1.0:
            raise ValueError(f"need bistream_ratio >= 1 and bistream_prob in [0, 1], got "
                             f"{self.bistream_ratio}, {self.bistream_prob}")

    @property
    def eos(self) -> int:
        return self.n_speech

    @property
    def fill(self) -> int | None:
        if self.release_layout:
            return self.n_speech + 2
        return self.n_speech + 1 if self.bistream else None

    @property
    def n_out(self) -> int:
        return self.n_speech + 3 if self.release_layout else self.n_speech + 1 + int(self.bistream)

    @property
    def never_sampled(self) -> tuple[int, ...]:
        """Output ids generation masks: fill (it asks for more text: bistream input only) and the
        release layout's unused stop id."""
        return (self.n_speech + 1, self.n_speech + 2) if self.release_layout else (
            (self.fill,) if self.fill is not None else ())

    def transformer_config(self, causal: bool, n_layers: int) -> TransformerConfig:
        return TransformerConfig(d_model=self.d_model, n_heads=self.n_heads, n_layers=n_layers,
                                 ffn_dim=self.ffn_dim, dropout=self.dropout, causal=causal,
                                 activation=self.activation, rope_base=self.rope_base, norm_eps=self.norm_eps)


@dataclass
class LMPrediction:
    """Logits and targets at the positions that predict something (flattened over the batch)."""

    logits: torch.Tensor  # (N, V)
    targets: torch.Tensor  # (N,) long


class SpeechLM(nn.Module):
    """Text ids -> speech tokens, one interface for both styles.

    Args:
        config: sizes and style; ``config.eos`` / ``config.fill`` are the special output ids.
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        if config.style == "cosyvoice2":
            self.backbone = Qwen2Backbone(qwen2_config(
                n_text=config.n_text, d_model=d, n_heads=config.n_heads, n_layers=config.n_layers,
                n_kv_heads=config.n_kv_heads or config.n_heads, ffn_dim=config.ffn_dim,
                dropout=config.dropout, rope_base=config.rope_base, norm_eps=config.norm_eps))
        else:
            self.text_table = nn.Embedding(config.n_text, d)
            self.backbone = Transformer(config.transformer_config(causal=True, n_layers=config.n_layers))
        self.text_encoder = (Transformer(config.transformer_config(causal=False, n_layers=config.text_encoder_layers))
                             if config.text_encoder_layers else None)
        self.spk_projection = nn.Linear(config.spk_dim, d) if config.spk_dim else None
        self.special_embedding = nn.Embedding(2, d)  # sos, task
        self.speech_embedding = nn.Embedding(config.n_out if config.release_layout else config.n_speech, d)
        self.head = nn.Linear(d, config.n_out)
        for table in (self.special_embedding, self.speech_embedding, getattr(self, "text_table", None)):
            if table is not None:
                nn.init.normal_(table.weight, std=0.02)

    @property
    def text_embedding(self) -> nn.Embedding:
        return self.backbone.embed_tokens if self.config.style == "cosyvoice2" else self.text_table

    def load_pretrained_backbone(self, path) -> list[str]:
        """cosyvoice2: loads a local Qwen2 checkpoint into the backbone; returns the names skipped."""
        if self.config.style != "cosyvoice2":
            raise ValueError("only the cosyvoice2 style has a Qwen2 backbone")
        return self.backbone.load_pretrained(path)

    def forward(self, text, text_lengths, speech, speech_lengths, spk=None) -> torch.Tensor:
        """Teacher-forced logits over the speech part of each row (no bistream interleaving).

        Args:
            text: (B, L) text ids, padded; text_lengths: (B,).
            speech: (B, T) speech tokens, padded (any value); speech_lengths: (B,).
            spk: (B, spk_dim) speaker embeddings; only with ``config.spk_dim``.

        Returns:
            (B, T + 1, n_out) logits: position t predicts speech[t], position speech_lengths[b]
            predicts eos; `speech_targets` gives the matching targets.
        """
        packed, _ = self._pack(text, text_lengths, speech, speech_lengths, spk)
        hidden = self._hidden(packed)  # (B, S, D)
        return self.head(take_segment(hidden, packed.starts[:, -2], speech.shape[1] + 1))  # from the task token

    def predict(self, text, text_lengths, speech, speech_lengths, spk=None, generator=None) -> LMPrediction:
        """The training prediction: every speech target, eos (and fill) of every row.

        With ``config.bistream``, in training mode, rows are drawn for the interleaved layout
        (see `bistream_blocks`); otherwise every row is [sos, spk?, text, task, speech].
        Arguments as in `forward`; ``generator`` drives the bistream draw.
        """
        blocks = None
        if self.config.bistream and self.training:
            blocks = bistream_blocks(text_lengths, speech_lengths, self.config.bistream_ratio,
                                     self.config.bistream_prob, generator)
        logits, targets, _ = self.row_logits(text, text_lengths, speech, speech_lengths, spk, blocks)
        keep = targets != IGNORE
        return LMPrediction(logits[keep], targets[keep])

    def row_logits(self, text, text_lengths, speech, speech_lengths, spk=None, blocks=None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits at every position of the packed rows.

        Args:
            text, text_lengths, speech, speech_lengths, spk: as in `forward`.
            blocks: (B,) full bistream blocks per row (`bistream_blocks`); None: unistream rows.

        Returns:
            logits (B, S, n_out), targets (B, S) long (IGNORE where nothing is predicted) and the
            (B, S) padding mask (True at real positions) of the right-padded rows.
        """
        packed, labels = self._pack(text, text_lengths, speech, speech_lengths, spk, blocks)
        targets = next_token_targets(labels, packed.padding_mask, self.config.eos, self.config.fill)  # (B, S)
        return self.head(self._hidden(packed)), targets, packed.padding_mask

    def new_cache(self, max_length: int | None = None):
        """An empty KV cache for `prefill` / `decode_step`."""
        return self.backbone.new_cache(max_length)

    def prefill(self, text, text_lengths, spk, prompt_speech, prompt_lengths, cache):
        """Runs [sos, spk?, text, task, prompt speech] into an empty cache, rows left-padded.

        Returns:
            logits (B, n_out) for the first generated token, and its positions (B,) long.
        """
        packed, _ = self._pack(text, text_lengths, prompt_speech, prompt_lengths, spk, pad_left=True)
        hidden = self._hidden(packed, cache)  # (B, S, D)
        return self.head(hidden[:, -1]), packed.padding_mask.sum(dim=1)

    def decode_step(self, speech_ids: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        """Feeds one speech token per row (B,) at positions (B,); returns (B, n_out) logits."""
        x = self.speech_embedding(speech_ids[:, None])  # (B, 1, D)
        return self.head(self.backbone(x, positions[:, None], cache=cache)[:, -1])

    def _hidden(self, packed: PackedRows, cache=None) -> torch.Tensor:
        positions = (packed.padding_mask.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, S): one count per row
        return self.backbone(packed.values, positions, padding_mask=packed.padding_mask, cache=cache)

    def _embed_text(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        x = self.text_embedding(text)  # (B, L, D)
        if self.text_encoder is not None:
            positions = torch.arange(text.shape[1], device=text.device).expand(text.shape)
            x = self.text_encoder(x, positions, lengths_to_mask(text_lengths, text.shape[1]))
        return x

    def _pack(self, text, text_lengths, speech, speech_lengths, spk, blocks=None, pad_left=False):
        """Packed row embeddings and labels (B, S): the speech token at speech positions, IGNORE elsewhere.

        ``blocks`` (B,): full bistream blocks per row (None: none); the last two segments are always
        [task ; speech rest], so ``starts[:, -2]`` is the task column.
        """
        batch, device = text.shape[0], text.device
        text_lengths, speech_lengths = text_lengths.to(device).long(), speech_lengths.to(device).long()
        blocks = torch.zeros_like(text_lengths) if blocks is None else blocks.to(device).long()
        speech = speech.long().masked_fill(~lengths_to_mask(speech_lengths, speech.shape[1]), 0)
        text_h, speech_h = self._embed_text(text, text_lengths), self.speech_embedding(speech)
        one = torch.ones_like(text_lengths)
        segments = [(self._special(SOS, batch), None, one)]
        if self.spk_projection is not None:
            if spk is None:
                raise ValueError(f"this LM reads a speaker embedding: pass spk (B, {self.config.spk_dim})")
            segments.append((self.spk_projection(F.normalize(spk.to(text_h.dtype), dim=-1))[:, None], None, one))
        n_t, n_s = self.config.bistream_ratio
        for j in range(int(blocks.max()) if batch else 0):
            on = (j < blocks).long()
            segments.append((text_h[:, j * n_t:(j + 1) * n_t], None, on * n_t))
            block = slice(j * n_s, (j + 1) * n_s)
            segments.append((speech_h[:, block], speech[:, block], on * n_s))
        segments.append((take_segment(text_h, blocks * n_t, text.shape[1]), None, text_lengths - blocks * n_t))
        segments.append((self._special(TASK, batch), None, one))
        rest, width = blocks * n_s, speech.shape[1]
        segments.append((take_segment(speech_h, rest, width), take_segment(speech, rest, width), speech_lengths - rest))

        lengths = [length for _, _, length in segments]
        packed = pack_segments([values for values, _, _ in segments], lengths, pad_left=pad_left)
        labels = [ids if ids is not None else torch.full(values.shape[:2], IGNORE, device=device)
                  for values, ids, _ in segments]
        labels = pack_segments(labels, lengths, pad_left=pad_left).values.masked_fill(~packed.padding_mask, IGNORE)
        return packed, labels

    def _special(self, index: int, batch: int) -> torch.Tensor:
        return self.special_embedding.weight[index].expand(batch, 1, -1)  # (B, 1, D)


def bistream_blocks(text_lengths, speech_lengths, ratio=(5, 15), prob=0.5, generator=None) -> torch.Tensor:
    """Full text : speech blocks per row for bistream training, 0 for rows kept unistream.

    A row qualifies when it has more than m / n speech tokens per text token (every full block
    then has its m speech tokens); each qualifying row is interleaved with probability ``prob``.

    Returns:
        (B,) long: ``text_length // n`` for interleaved rows, else 0.
    """
    n_t, n_s = ratio
    device = generator.device if generator is not None else text_lengths.device
    draw = torch.rand(text_lengths.shape, generator=generator, device=device).to(text_lengths.device) < prob
    qualifies = speech_lengths * n_t > text_lengths * n_s
    return torch.where(draw & qualifies, torch.div(text_lengths, n_t, rounding_mode="floor"), 0).long()


def next_token_targets(labels: torch.Tensor, padding_mask: torch.Tensor, eos: int, fill: int | None) -> torch.Tensor:
    """Targets of a packed right-padded row from its labels (B, S): -> (B, S) long.

    A position predicts the next speech token; the last speech token of a block followed by
    text (bistream) predicts ``fill``; the last real position predicts ``eos``; all else IGNORE.
    """
    is_speech = labels >= 0  # (B, S)
    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = torch.where(is_speech[:, 1:], labels[:, 1:], IGNORE)
    if fill is not None:
        to_text = is_speech[:, :-1] & ~is_speech[:, 1:] & padding_mask[:, 1:]
        targets[:, :-1] = targets[:, :-1].masked_fill(to_text, fill)
    last = padding_mask.long().sum(dim=1, keepdim=True) - 1  # (B, 1)
    return targets.scatter(1, last, eos)


def speech_targets(speech: torch.Tensor, speech_lengths: torch.Tensor, eos: int) -> torch.Tensor:
    """Targets of `SpeechLM.forward`'s (B, T + 1) logits: speech then eos, IGNORE after."""
    n = speech.shape[1]
    targets = F.pad(speech.long(), (0, 1)).scatter(1, speech_lengths[:, None].long(), eos)  # (B, T + 1)
    return targets.masked_fill(~lengths_to_mask(speech_lengths + 1, n + 1), IGNORE)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean cross-entropy and top-1 accuracy over the targets that are not IGNORE.

    Args:
        logits: (..., V); targets: (...) long, IGNORE where nothing is predicted.

    Returns:
        {"loss", "accuracy"} scalars; the accuracy is detached. Zero when nothing counts.
    """
    flat_logits, flat_targets = logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1)
    counted = flat_targets != IGNORE
    count = counted.sum().clamp(min=1)
    loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE, reduction="sum") / count
    with torch.no_grad():
        accuracy = ((flat_logits.argmax(dim=-1) == flat_targets) & counted).sum() / count
    return {"loss": loss, "accuracy": accuracy.float()}
