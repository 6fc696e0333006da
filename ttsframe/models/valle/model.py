"""VALL-E: an autoregressive model of the first codebook and a non-autoregressive model of
the others (Wang et al., 2023, "Neural Codec Language Models are Zero-Shot Text to Speech
Synthesizers").

Both models read a packed row [phonemes_i ; audio_i ; pad ...] (see `ttsframe.modules.packing`)
whose segments each start at rotary position 0, and return a `CodebookPrediction` (logits,
targets, mask); `loss.codebook_loss` turns that into the loss and accuracies.

Audio ids of the AR (one table for input and output):
    0 .. N-1   codes of the first codebook (N = codebook_size)
    N          end of speech (EOS), predicted after the last frame
    N + 1      begin of speech (BOS), input only: the first audio position

Codebooks are indexed from 0 here: the AR models codebook 0, the NAR's "stage" j in
1..K-1 predicts codebook j from codebooks 0..j-1 (the paper's codebooks 2..K).

With ``phoneme_pointer`` (VALL-E R's monotonic alignment as we read it; MELLE and DiTAR have the
same, `ttsframe.modules.phoneme_pointer`) the AR trains a forward-sum aligner alongside: it reads
its own embedding of the codebook-0 codes (not the AR's ``audio_embedding``; trained by the
forward-sum loss alone) and gives every frame a phoneme. AR step t (input BOS or code t - 1, target
code t) also carries the embedding of frame t's phoneme (the EOS step: the row's last phoneme), and
an advance head on hidden state t and code t predicts how many phonemes frame t + 1 moves on; after
the last frame the pointer moves past the text, which ends a row in generation. Codebook 0 only feeds the
aligner: it is what the AR reads, in training and in generation alike. The NAR has no pointer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsframe.models.valle.loss import CodebookPrediction
from ttsframe.modules import phoneme_pointer
from ttsframe.modules.aligner import AlignerConfig, ForwardSumAligner
from ttsframe.modules.packing import PackedRows, lengths_to_mask, pack_segments, take_segment
from ttsframe.modules.kv_cache import KVCache
from ttsframe.modules.stop_head import scale_gradient
from ttsframe.modules.transformer import Transformer, TransformerConfig


@dataclass
class ValleConfig:
    vocab_size: int  # phoneme vocabulary, <pad> = 0
    n_codebooks: int = 8
    codebook_size: int = 1024
    d_model: int = 1024
    n_heads: int = 16
    n_layers: int = 12
    ffn_dim: int = 4096
    dropout: float = 0.1
    activation: str = "gelu"  # or "swiglu"
    bias: bool = True
    rope_base: float = 10_000.0
    # NAR training: the prompt is a prefix of the utterance covering this share of its frames.
    prompt_fraction_min: float = 0.25
    prompt_fraction_max: float = 0.5
    # AR training: share of the input codes replaced by random codes (the targets stay), so that
    # predicting the next code from the previous ones alone stops paying and the text must be read.
    input_noise: float = 0.0
    # AR phoneme pointer (`ttsframe.modules.phoneme_pointer`; MELLE and DiTAR have the same): a
    # forward-sum aligner over the AR's codebook-0 codes (its own code embedding of width
    # ``aligner_d_model``) gives each frame a phoneme; each AR input also carries the embedding of the
    # phoneme of the frame it predicts, and an advance head (an MLP) on hidden state t and code t
    # predicts how many phonemes frame t + 1 moves on (0 .. max_advance - 1; past the text after the
    # last frame), its gradient into the transformer scaled by ``advance_grad_scale``; seeing code t
    # took the memorization check from WER 0.986 to 0.705 (docs/recipes/valle.md). Generation follows
    # the head and ends a row once the pointer passes its text. The NAR ignores these.
    phoneme_pointer: bool = False
    max_advance: int = 4
    advance_grad_scale: float = 0.02
    aligner_d_model: int = 128

    def __post_init__(self):
        if not 0.0 <= self.prompt_fraction_min <= self.prompt_fraction_max <= 1.0:
            raise ValueError(
                f"need 0 <= prompt_fraction_min <= prompt_fraction_max <= 1, got "
                f"{self.prompt_fraction_min}, {self.prompt_fraction_max}"
            )
        if self.max_advance < 2:
            raise ValueError(f"max_advance must be >= 2, got {self.max_advance}")
        if not 0.0 <= self.advance_grad_scale <= 1.0:
            raise ValueError(f"advance_grad_scale must be in [0, 1], got {self.advance_grad_scale}")
        if self.aligner_d_model < 1:
            raise ValueError(f"aligner_d_model must be >= 1, got {self.aligner_d_model}")

    @property
    def audio_eos(self) -> int:
        return self.codebook_size

    @property
    def audio_bos(self) -> int:
        return self.codebook_size + 1

    def transformer_config(self, causal: bool, cond_dim: int | None = None) -> TransformerConfig:
        return TransformerConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            ffn_dim=self.ffn_dim,
            dropout=self.dropout,
            causal=causal,
            activation=self.activation,
            cond_dim=cond_dim,
            bias=self.bias,
            rope_base=self.rope_base,
        )


def _embedding(n: int, d_model: int) -> nn.Embedding:
    table = nn.Embedding(n, d_model)
    nn.init.normal_(table.weight, std=0.02)
    return table


class ValleAR(nn.Module):
    """Decoder-only LM over [phonemes ; BOS, codebook-0 codes], predicting codes then EOS.

    Args:
        config: model sizes; ``config.audio_eos`` / ``config.audio_bos`` are the special ids.
    """

    def __init__(self, config: ValleConfig):
        super().__init__()
        self.config = config
        self.text_embedding = _embedding(config.vocab_size, config.d_model)
        self.audio_embedding = _embedding(config.codebook_size + 2, config.d_model)  # codes, EOS, BOS
        self.transformer = Transformer(config.transformer_config(causal=True))
        self.head = nn.Linear(config.d_model, config.codebook_size + 1, bias=False)  # codes, EOS
        nn.init.normal_(self.head.weight, std=0.02)
        self.aligner = self.aligner_embedding = self.pointer_embedding = self.advance_head = None
        self.advance_code_embedding = None
        if config.phoneme_pointer:
            width = config.aligner_d_model
            self.aligner_embedding = nn.Embedding(config.codebook_size, width)  # N(0, 1): standardised frames
            self.aligner = ForwardSumAligner(AlignerConfig(config.vocab_size, n_mels=width, d_model=width))
            self.pointer_embedding = _embedding(config.vocab_size, config.d_model)
            # the move after frame t is decided once code t is known: an MLP over hidden state t and code t
            self.advance_code_embedding = nn.Embedding(config.codebook_size + 1, config.d_model)  # codes, EOS
            self.advance_head = nn.Sequential(nn.Linear(2 * config.d_model, config.d_model), nn.GELU(),
                                              nn.Linear(config.d_model, config.max_advance))

    def forward(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        codes: torch.Tensor,
        frame_lengths: torch.Tensor,
    ) -> CodebookPrediction:
        """Teacher-forced next-token prediction over the audio part of each row.

        Args:
            tokens: (B, L) phoneme ids, padded.
            token_lengths: (B,) real phonemes per row.
            codes: (B, T) first-codebook codes, or (B, K, T) all codes (codebook 0 is used).
            frame_lengths: (B,) real frames per row.

        Returns:
            `CodebookPrediction` on T + 1 audio steps: at step t the input is BOS (t = 0) or
            code t - 1 and the target is code t, or EOS at t = frame_length; logits
            (B, T + 1, N + 1), targets (B, T + 1), mask (B, T + 1) True for t <= frame_length.
            With a phoneme pointer also ``aligner_loss`` and ``advance`` over the T frames.
        """
        if codes.dim() == 3:
            codes = codes[:, 0]
        batch, n_frames = codes.shape
        codes = codes.masked_fill(~lengths_to_mask(frame_lengths, n_frames), 0)  # pads may hold any value
        bos = codes.new_full((batch, 1), self.config.audio_bos)
        inputs = self._noisy(codes) if self.training and self.config.input_noise > 0 else codes
        audio_ids = torch.cat([bos, inputs], dim=1)  # (B, T + 1)
        aligner_loss, pointers = self.align(tokens, token_lengths, codes, frame_lengths)  # (), (B, T + 1) or None
        packed = self._pack(tokens, token_lengths, audio_ids, frame_lengths + 1, pad_left=False, pointers=pointers)
        hidden = self.transformer(packed.values, packed.positions, packed.padding_mask)  # (B, S, D)
        audio_hidden = take_segment(hidden, packed.starts[:, 1], n_frames + 1)  # (B, T + 1, D)
        logits = self.head(audio_hidden)  # (B, T + 1, N + 1)

        targets = torch.cat([codes, codes.new_zeros(batch, 1)], dim=1)  # (B, T + 1)
        targets = targets.scatter(1, frame_lengths[:, None].long(), self.config.audio_eos)
        mask = lengths_to_mask(frame_lengths + 1, n_frames + 1)  # (B, T + 1)
        advance = None
        if pointers is not None:
            advance = self._advance(audio_hidden[:, :-1], codes, pointers, token_lengths, frame_lengths)
        return CodebookPrediction(logits, targets, mask, aligner_loss=aligner_loss, advance=advance)

    def align(self, tokens: torch.Tensor, token_lengths: torch.Tensor, codes: torch.Tensor,
              frame_lengths: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """With a phoneme pointer: the aligner's forward-sum loss and the phoneme index (into
        ``tokens``) of each AR step, (B, T + 1) long: step t < T that of frame t, the EOS step the
        row's last phoneme (so are the steps past a row's frames); else (None, None).

        Args:
            tokens: (B, L); token_lengths: (B,); codes: (B, T) codebook 0 (any value past
                ``frame_lengths`` (B,), each >= 1).
        """
        if self.aligner is None:
            return None, None
        frames = self.aligner_frames(codes, frame_lengths)  # (B, T, d)
        loss, path = phoneme_pointer.aligned_steps(self.aligner, tokens, token_lengths, frames, frame_lengths,
                                                   codes.shape[1], size=1)  # (), (B, T)
        last = (token_lengths.long() - 1).clamp(min=0)
        return loss, torch.cat([path, last[:, None].to(path.device)], dim=1)

    def aligner_frames(self, codes: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) codebook-0 codes, (B,) -> (B, T, aligner_d_model) the aligner's frames, zeros past the lengths."""
        mask = lengths_to_mask(frame_lengths, codes.shape[1])  # (B, T)
        frames = self.aligner_embedding(codes.masked_fill(~mask, 0).clamp(0, self.config.codebook_size - 1))
        return frames * mask[..., None]

    def _advance(self, frame_hidden: torch.Tensor, codes: torch.Tensor, pointers: torch.Tensor,
                 token_lengths: torch.Tensor, frame_lengths: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The advance head on the hidden states of steps 0 .. T - 1, (B, T, D), and the codes (B, T)
        they predict, and its targets: the move from frame t to t + 1, the last frame's to one past
        the text. -> logits (B, T, A), moves (B, T) long, mask (B, T) of the real frames."""
        n_frames = frame_hidden.shape[1]
        ends = pointers.scatter(1, frame_lengths[:, None].long(), token_lengths[:, None].long())  # (B, T + 1)
        moves = phoneme_pointer.advance_targets(ends, self.config.max_advance)  # (B, T)
        logits = self.advance_logits(scale_gradient(frame_hidden, self.config.advance_grad_scale), codes)
        return logits, moves, lengths_to_mask(frame_lengths, n_frames)

    def advance_logits(self, hidden: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """(..., D) hidden states, (...) the codes (or EOS) chosen from them -> (..., A) logits of the
        next frame's move."""
        code = self.advance_code_embedding(codes).to(hidden.dtype)  # (..., D)
        return self.advance_head(torch.cat([hidden, code], dim=-1))

    def _noisy(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) codes with a random `input_noise` share replaced by uniformly drawn codes."""
        replace = torch.rand(codes.shape, device=codes.device) < self.config.input_noise
        random_codes = torch.randint_like(codes, self.config.codebook_size)
        return torch.where(replace, random_codes, codes)

    def prefill(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        prompt_codes: torch.Tensor,
        prompt_lengths: torch.Tensor,
        cache: KVCache,
        pointers: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs [phonemes ; BOS, prompt codes] into an empty cache, rows left-padded.

        Left padding puts every row's last real position in the last column, so the decode
        steps that follow append one column for all rows.

        Args:
            tokens: (B, L) phonemes (prompt text + target text for zero-shot synthesis).
            token_lengths: (B,).
            prompt_codes: (B, Tp) first-codebook codes of the acoustic prompt (Tp may be 0).
            prompt_lengths: (B,).
            cache: an empty cache from ``self.transformer.new_cache``.
            pointers: (B, Tp + 1) the phoneme index (into ``tokens``) of the frame each input
                predicts (prompt frames 0 .. Tp - 1, then the first generated one); a model with
                ``phoneme_pointer`` needs them.

        Returns:
            the hidden state (B, D) that predicts the first generated frame, and its audio positions (B,).
        """
        batch, n_prompt = prompt_codes.shape
        prompt_codes = prompt_codes.masked_fill(~lengths_to_mask(prompt_lengths, n_prompt), 0)
        bos = prompt_codes.new_full((batch, 1), self.config.audio_bos)
        audio_ids = torch.cat([bos, prompt_codes], dim=1)  # (B, Tp + 1)
        packed = self._pack(tokens, token_lengths, audio_ids, prompt_lengths + 1, pad_left=True, pointers=pointers)
        hidden = self.transformer(packed.values, packed.positions, packed.padding_mask, cache=cache)
        return hidden[:, -1], (prompt_lengths + 1).long()

    def decode_step(self, audio_ids: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                    phonemes: torch.Tensor | None = None) -> torch.Tensor:
        """Feeds one audio id per row after `prefill` or an earlier step.

        Args:
            audio_ids: (B,) the ids chosen at the previous step.
            positions: (B,) their audio positions.
            cache: the cache `prefill` filled; extended in place.
            phonemes: (B,) ids of the phoneme the next frame speaks (a ``phoneme_pointer`` needs them).

        Returns:
            (B, D) the hidden state that predicts the next frame (`head` gives its logits).
        """
        x = self.audio_embedding(audio_ids[:, None])  # (B, 1, D)
        if self.pointer_embedding is not None:
            x = x + self.pointer_embedding(phonemes)[:, None].to(x.dtype)
        return self.transformer(x, positions[:, None], cache=cache)[:, -1]  # (B, D)

    def _pack(self, tokens, token_lengths, audio_ids, audio_lengths, pad_left: bool, pointers=None) -> PackedRows:
        """[text ; audio ids] per row; ``pointers`` (B, >= Ta): the phoneme index of the frame each
        audio input predicts, whose embedding is added (with a phoneme pointer)."""
        text = self.text_embedding(tokens)  # (B, L, D)
        audio = self.audio_embedding(audio_ids)  # (B, Ta, D)
        if self.pointer_embedding is not None:
            if pointers is None:
                raise ValueError("this VALL-E AR has a phoneme pointer: pass the pointers of its steps")
            phonemes = phoneme_pointer.pointer_phonemes(tokens, pointers[:, : audio.shape[1]])  # (B, Ta)
            audio = audio + self.pointer_embedding(phonemes).to(audio.dtype)
        return pack_segments([text, audio], [token_lengths, audio_lengths], pad_left=pad_left)


class ValleNAR(nn.Module):
    """Non-causal model predicting codebook j of the target from the text, the acoustic
    prompt (all codebooks) and the target's codebooks 0..j-1.

    The audio segment is [prompt frames ; target frames] with one rotary position count.
    Each frame's input is the sum of the embeddings of the codebooks known there (all K in
    the prompt, 0..j-1 in the target); the stage j reaches every layer through adaptive
    layer norm. Each stage has its own output head (separate, not tied to the embeddings).

    Args:
        config: model sizes; needs ``n_codebooks >= 2``.
    """

    def __init__(self, config: ValleConfig):
        super().__init__()
        if config.n_codebooks < 2:
            raise ValueError("the NAR needs at least 2 codebooks; with 1 the AR alone models the codes")
        self.config = config
        n_stages = config.n_codebooks - 1
        self.text_embedding = _embedding(config.vocab_size, config.d_model)
        self.audio_embeddings = nn.ModuleList(
            _embedding(config.codebook_size, config.d_model) for _ in range(config.n_codebooks)
        )
        self.stage_embedding = _embedding(n_stages, config.d_model)
        self.transformer = Transformer(config.transformer_config(causal=False, cond_dim=config.d_model))
        self.head_weight = nn.Parameter(torch.randn(n_stages, config.codebook_size, config.d_model) * 0.02)

    def sample_plan(
        self, frame_lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training plan per row: a prompt length and a stage.

        The prompt covers a uniform share in [prompt_fraction_min, prompt_fraction_max] of
        the row's frames, at least 1 frame and leaving at least 1 target frame; the stage is
        uniform in 1..K-1. Draws on the generator's device, returns on frame_lengths' device.

        Returns:
            prompt_lengths (B,), stages (B,), both long.
        """
        device = generator.device if generator is not None else frame_lengths.device
        lengths = frame_lengths.to(device=device, dtype=torch.long)
        low, high = self.config.prompt_fraction_min, self.config.prompt_fraction_max
        fraction = low + (high - low) * torch.rand(lengths.shape, generator=generator, device=device)
        prompt = torch.floor(fraction * lengths).long().clamp(min=1)
        prompt = torch.minimum(prompt, lengths - 1).clamp(min=0)
        stages = torch.randint(1, self.config.n_codebooks, lengths.shape, generator=generator, device=device)
        return prompt.to(frame_lengths.device), stages.to(frame_lengths.device)

    def forward(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        codes: torch.Tensor,
        frame_lengths: torch.Tensor,
        prompt_lengths: torch.Tensor | None = None,
        stages: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> CodebookPrediction:
        """Predicts codebook ``stages[i]`` on the target frames of each row.

        In training, ``codes`` is one utterance and its first ``prompt_lengths`` frames act
        as the prompt; leave both plan arguments None to draw them with `sample_plan`. In
        synthesis, ``codes`` holds [prompt ; target] per row (target codebooks >= stage are
        ignored, any value).

        Args:
            tokens: (B, L) phonemes, padded; token_lengths: (B,).
            codes: (B, K, T) codes; frame_lengths: (B,) real frames (prompt + target).
            prompt_lengths: (B,) prompt frames at the start of each row.
            stages: (B,) codebook index to predict, in 1..K-1.
            generator: random source for the plan when it is drawn here.

        Returns:
            `CodebookPrediction` over all T frames: logits (B, T, N), targets (B, T) the
            codes of codebook ``stages``, mask (B, T) True on target frames, and ``stages``.
        """
        if (prompt_lengths is None) != (stages is None):
            raise ValueError("pass both prompt_lengths and stages, or neither to sample them")
        if stages is None:
            prompt_lengths, stages = self.sample_plan(frame_lengths, generator)
        batch, n_codebooks, n_frames = codes.shape
        frame_mask = lengths_to_mask(frame_lengths, n_frames)  # (B, T)
        codes = codes.masked_fill(~frame_mask[:, None], 0)
        is_prompt = lengths_to_mask(prompt_lengths, n_frames)  # (B, T)

        audio = 0
        for index, table in enumerate(self.audio_embeddings):
            known = is_prompt | (index < stages)[:, None]  # (B, T)
            audio = audio + table(codes[:, index]) * known[..., None]  # (B, T, D)
        text = self.text_embedding(tokens)  # (B, L, D)
        packed = pack_segments([text, audio], [token_lengths, frame_lengths])
        cond = self.stage_embedding(stages - 1)  # (B, D)
        hidden = self.transformer(packed.values, packed.positions, packed.padding_mask, cond=cond)
        audio_hidden = take_segment(hidden, packed.starts[:, 1], n_frames)  # (B, T, D)
        weight = self.head_weight[stages - 1]  # (B, N, D)
        logits = torch.bmm(audio_hidden, weight.transpose(1, 2))  # (B, T, N)

        targets = codes.gather(1, stages[:, None, None].expand(batch, 1, n_frames)).squeeze(1)  # (B, T)
        mask = frame_mask & ~is_prompt
        return CodebookPrediction(logits, targets, mask, stages)
