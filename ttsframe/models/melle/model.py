"""MELLE: a decoder-only language model over continuous mel frames (Meng et al., 2024,
"Autoregressive Speech Synthesis without Vector Quantization").

One causal transformer reads a packed row [phonemes_i ; BOS, mel groups_i ; pad ...] (see
`ttsframe.modules.packing`), each segment starting at rotary position 0. The hidden state
at audio position j predicts mel group j (r frames, the reduction factor): the latent sampling
module (`latent.py`) draws z ~ N(mu, sigma^2) and maps it to the coarse frames y'; a stop head
says whether group j is the last; a convolutional post-net (`postnet.py`) refines the whole
coarse spectrogram into y''. Training is teacher-forced: the input at position j >= 1 is the
pre-net of the *target* group j - 1. The loss lives in `loss.py`, decoding in `generate.py`.

With ``phoneme_pointer`` (`ttsframe.modules.phoneme_pointer`) a forward-sum aligner trained alongside
gives group j the phoneme of its middle frame; input j also carries that phoneme's embedding, and an
advance head on hidden state j predicts how many phonemes group j + 1 moves on.

Normalisation. The model works on per-bin standardised log-mel, (mel - mean) / std, and
returns log-mel again from `denormalize`. ``mel_mean`` and ``mel_std`` (n_mels,) are buffers,
so they travel with the weights (checkpoint, release). They start as 0 / 1 (identity) with
``mel_stats_fitted`` False; the training task fits them on the training shards before the
first step (`task.fit_mel_stats`), or call `set_mel_stats` yourself.

Reduction factor r: frame t belongs to group t // r; a row of T frames has ceil(T / r)
groups, the last one zero-padded (those padding frames are masked out of every loss, so
the model never learns what to put there: generation returns whole groups, at most r - 1
frames past the predicted end).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsframe.models.melle.latent import LatentSampler, MelPrenet, frames_to_groups, groups_to_frames
from ttsframe.models.melle.loss import MellePrediction
from ttsframe.models.melle.postnet import PostNet
from ttsframe.modules.aligner import AlignerConfig, ForwardSumAligner
from ttsframe.modules.duration_plan import DurationPredictor, steps_per_phoneme
from ttsframe.modules.packing import PackedRows, lengths_to_mask, pack_segments, take_segment
from ttsframe.modules.kv_cache import KVCache
from ttsframe.modules import mel_norm, phoneme_pointer
from ttsframe.modules.stop_head import StopHead, scale_gradient
from ttsframe.modules.transformer import Transformer, TransformerConfig


@dataclass
class MelleConfig:
    vocab_size: int  # phoneme vocabulary, <pad> = 0
    n_mels: int = 80
    reduction_factor: int = 1  # frames read and predicted per decoder step (1..4)
    d_model: int = 1024
    n_heads: int = 16
    n_layers: int = 12
    ffn_dim: int = 4096
    dropout: float = 0.1  # transformer, latent MLP and post-net
    activation: str = "gelu"  # or "swiglu"
    bias: bool = True
    rope_base: float = 10_000.0
    prenet_dim: int = 256
    prenet_dropout: float = 0.5
    latent_hidden: int = 256  # residual MLP that maps the sampled latent to mel frames
    postnet_channels: int = 256
    postnet_kernel: int = 5
    postnet_layers: int = 5
    # The stop head (`ttsframe.modules.stop_head`): an MLP of this width (0: one linear layer) whose
    # gradient into the transformer is scaled by ``stop_grad_scale`` (the stop term once swamped the
    # regression there and the model stopped reading the text).
    stop_hidden: int = 64
    stop_grad_scale: float = 0.02
    # Scheduled sampling in one extra pass: this share of the training inputs (groups 1..S-1) is the
    # model's own teacher-forced prediction of that group (no gradient) instead of the target, so the
    # model learns to continue from frames like the ones it feeds itself in generation.
    self_feed: float = 0.0
    # Phoneme pointer (`ttsframe.modules.phoneme_pointer`; DiTAR has the same): a forward-sum aligner
    # trained alongside gives each group a phoneme (that of its middle frame); each transformer input
    # also carries the embedding of the phoneme of the group it predicts, and an advance head on the
    # hidden state of group j predicts how many phonemes group j + 1 moves on (0 .. max_advance - 1),
    # its gradient into the transformer scaled by ``advance_grad_scale``. Generation follows the head
    # and ends a row once the pointer passes its text.
    phoneme_pointer: bool = False
    # The advance head also sees group j itself (teacher-forced: the target's; generating: the group just
    # drawn), through an MLP: the move after a group is decided knowing what the group says. Without it,
    # the memorized model said its rows back at WER 0.45-0.55, and 0.14-0.20 fed the aligner's own track.
    advance_sees_group: bool = False
    # In training, this share of the groups is fed the pointer of the group before or after (a phoneme
    # boundary a group early or late; `phoneme_pointer.jittered`), and the advance head learns the move
    # back onto the aligner's track: the model follows the pointer it is given, as generation needs.
    pointer_jitter: float = 0.0
    max_advance: int = 4
    advance_grad_scale: float = 0.02
    aligner_d_model: int = 128
    # A duration plan (`ttsframe.modules.duration_plan`): a text-only predictor of each phoneme's steps,
    # trained on the aligner's; generation follows the track it plans (scaled to the prompt's pace)
    # instead of the advance head's step-by-step moves (`MelleSamplingOptions.follow_plan`).
    duration_plan: bool = False
    # With a phoneme pointer: this many convolution layers (kernel 5) encode the text around each
    # phoneme (`phoneme_pointer.PhonemeContext`), and the input of a group also carries that encoding
    # at its pointer, as a TTS text encoder's output (0: the pointed phoneme's embedding alone).
    pointer_context: int = 0

    def __post_init__(self):
        if not 1 <= self.reduction_factor <= 4:
            raise ValueError(f"reduction_factor must be in 1..4, got {self.reduction_factor}")
        if not 0.0 <= self.self_feed <= 1.0:
            raise ValueError(f"self_feed must be in [0, 1], got {self.self_feed}")
        if self.max_advance < 2:
            raise ValueError(f"max_advance must be >= 2, got {self.max_advance}")
        if not 0.0 <= self.advance_grad_scale <= 1.0:
            raise ValueError(f"advance_grad_scale must be in [0, 1], got {self.advance_grad_scale}")
        if not 0.0 <= self.pointer_jitter <= 1.0:
            raise ValueError(f"pointer_jitter must be in [0, 1], got {self.pointer_jitter}")
        if self.duration_plan and not self.phoneme_pointer:
            raise ValueError("duration_plan needs phoneme_pointer=true (it plans the pointer's track)")
        if self.pointer_context and not self.phoneme_pointer:
            raise ValueError("pointer_context needs phoneme_pointer=true (it encodes the pointed phoneme's text)")

    @property
    def group_dim(self) -> int:
        """Width of one decoder step's frames: r * n_mels."""
        return self.reduction_factor * self.n_mels

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig(
            d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers, ffn_dim=self.ffn_dim,
            dropout=self.dropout, causal=True, activation=self.activation, bias=self.bias,
            rope_base=self.rope_base,
        )


def steps_for(frame_lengths: torch.Tensor, r: int) -> torch.Tensor:
    """Decoder steps (groups) of rows with these frame counts: ceil(T / r), (B,) long."""
    return torch.div(frame_lengths.long() + r - 1, r, rounding_mode="floor")


class Melle(nn.Module):
    """Text embedding + mel pre-net -> causal transformer -> latent sampler, stop head, post-net.

    Args:
        config: sizes; ``config.reduction_factor`` fixes the frames per step.
    """

    def __init__(self, config: MelleConfig):
        super().__init__()
        self.config = config
        d_model, n_mels = config.d_model, config.n_mels
        self.text_embedding = nn.Embedding(config.vocab_size, d_model)
        nn.init.normal_(self.text_embedding.weight, std=0.02)
        self.bos = nn.Parameter(torch.randn(d_model) * 0.02)  # learned input of the first audio step
        self.prenet = MelPrenet(config.group_dim, config.prenet_dim, d_model, config.prenet_dropout)
        self.transformer = Transformer(config.transformer_config())
        self.latent = LatentSampler(d_model, config.group_dim, config.latent_hidden, config.dropout)
        self.stop_head = StopHead(d_model, config.stop_hidden, config.stop_grad_scale)
        self.postnet = PostNet(n_mels, config.postnet_channels, config.postnet_kernel, config.postnet_layers,
                               config.dropout)
        self.aligner = self.pointer_embedding = self.advance_head = self.duration_predictor = None
        self.pointer_context = None
        if config.phoneme_pointer:
            self.aligner = ForwardSumAligner(AlignerConfig(config.vocab_size, n_mels, config.aligner_d_model))
            self.pointer_embedding = nn.Embedding(config.vocab_size, d_model)
            nn.init.normal_(self.pointer_embedding.weight, std=0.02)
            if config.pointer_context:
                self.pointer_context = phoneme_pointer.PhonemeContext(config.vocab_size, d_model, config.pointer_context,
                                                                      dropout=config.dropout)
            self.advance_head = nn.Linear(d_model, config.max_advance) if not config.advance_sees_group else \
                nn.Sequential(nn.Linear(d_model + config.group_dim, d_model), nn.GELU(),
                              nn.Linear(d_model, config.max_advance))
        if config.duration_plan:
            self.duration_predictor = DurationPredictor(config.vocab_size)
        mel_norm.register_mel_stats(self, n_mels)

    # -- normalisation ---------------------------------------------------------------------
    def set_mel_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Sets the per-bin log-mel statistics, (n_mels,) each; std must be > 0."""
        mel_norm.set_mel_stats(self, mean, std)

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., M) log-mel -> standardised."""
        return mel_norm.normalize(self, mel)

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., M) standardised -> log-mel."""
        return mel_norm.denormalize(self, mel)

    # -- training ----------------------------------------------------------------------------
    def forward(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        mel: torch.Tensor,
        frame_lengths: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MellePrediction:
        """Teacher-forced prediction of every mel group, then the post-net over the utterance.

        Args:
            tokens: (B, L) phoneme ids, padded; token_lengths: (B,).
            mel: (B, T, M) log-mel (not normalised), padded (any value past the lengths).
            frame_lengths: (B,) real frames per row.
            noise: (B, S, r * M) the eps of the latent sampling, S = ceil(T / r); default a
                standard normal draw from ``generator``.
            generator: random source of that draw.

        Returns:
            `MellePrediction` over T frames and S steps (normalised mel space).
        """
        r = self.config.reduction_factor
        batch, n_frames, _ = mel.shape
        frame_mask = lengths_to_mask(frame_lengths, n_frames)  # (B, T)
        target = self.normalize(mel.float()).masked_fill(~frame_mask[..., None], 0.0)  # (B, T, M)
        groups = frames_to_groups(target, r)  # (B, S, rM)
        n_steps = groups.shape[1]
        steps = steps_for(frame_lengths, r)  # (B,)
        if noise is None:
            device = generator.device if generator is not None else mel.device
            noise = torch.randn(groups.shape, generator=generator, device=device).to(mel.device)
        # Input j is BOS (j = 0) or group j - 1 (the target's, or with self_feed the model's own); the
        # last group is never an input.
        inputs = groups[:, :-1]  # (B, S - 1, rM)
        aligner_loss, pointers = self.align(tokens, token_lengths, target, frame_lengths, n_steps)  # (), (B, S)
        fed = pointers  # (B, S) what the inputs carry
        if pointers is not None and self.training and self.config.pointer_jitter > 0:
            fed = phoneme_pointer.jittered(pointers, self.config.pointer_jitter, generator)
        if self.training and self.config.self_feed > 0 and n_steps > 1:
            inputs = self._self_fed(tokens, token_lengths, inputs, steps, noise, generator, fed)
        audio_hidden = self._audio_hidden(tokens, token_lengths, inputs, steps, fed)  # (B, S, D)
        coarse, mu, logvar = self.latent(audio_hidden, noise.to(audio_hidden.dtype))  # (B, S, rM) each
        coarse, mu, logvar = (groups_to_frames(x, r)[:, :n_frames] for x in (coarse, mu, logvar))  # (B, T, M)
        refined = self.postnet(coarse, frame_mask)  # (B, T, M)

        step_mask = lengths_to_mask(steps, n_steps)  # (B, S)
        stop_targets = torch.zeros(batch, n_steps, device=mel.device)
        stop_targets = stop_targets.scatter(1, (steps - 1).clamp(min=0)[:, None], 1.0)
        stop_logits = self.stop_head(audio_hidden)  # (B, S)
        advance = None
        if pointers is not None:  # group j's head predicts the move to group j + 1 (none after the last)
            moves = phoneme_pointer.advance_targets(pointers, self.config.max_advance, fed)  # (B, S - 1)
            logits = self.advance_logits(scale_gradient(audio_hidden[:, :-1], self.config.advance_grad_scale),
                                         groups[:, :-1])
            advance = (logits, moves, step_mask[:, 1:])  # (B, S - 1, A), (B, S - 1), (B, S - 1)
        durations = None
        if self.duration_predictor is not None:  # the aligner's steps per phoneme, the plan's target
            durations = (self.duration_predictor(tokens, token_lengths),
                         steps_per_phoneme(pointers, steps, tokens.shape[1]), token_lengths)  # (B, L), (B, L), (B,)
        return MellePrediction(coarse, refined, mu, logvar, target, frame_mask, stop_logits, stop_targets, step_mask,
                               aligner_loss, advance, durations)

    def advance_logits(self, hidden: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """(..., D) hidden states, (..., rM) the normalised groups they predict -> (..., A) logits of
        the next group's move (the groups are read with ``advance_sees_group`` only)."""
        if not self.config.advance_sees_group:
            return self.advance_head(hidden)
        return self.advance_head(torch.cat([hidden, groups.to(hidden.dtype)], dim=-1))

    def align(self, tokens, token_lengths, frames, frame_lengths, n_steps: int):
        """With a phoneme pointer: the aligner's forward-sum loss and each group's phoneme (that of its
        middle frame), (B, S) long; else (None, None). frames (B, T, M) normalised, zeros past the lengths."""
        if self.aligner is None:
            return None, None
        return phoneme_pointer.aligned_steps(self.aligner, tokens, token_lengths, frames.float(), frame_lengths,
                                             n_steps, self.config.reduction_factor)

    def _audio_hidden(self, tokens, token_lengths, inputs: torch.Tensor, steps: torch.Tensor,
                      pointers: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced hidden states of the audio positions: inputs (B, S - 1, rM) -> (B, S, D);
        pointers (B, S): the phoneme index of each group (with a phoneme pointer)."""
        packed = self._pack(tokens, token_lengths, inputs, steps - 1, pad_left=False, pointers=pointers)
        hidden = self.transformer(packed.values, packed.positions, packed.padding_mask)  # (B, S_all, D)
        return take_segment(hidden, packed.starts[:, 1], inputs.shape[1] + 1)

    @torch.no_grad()
    def _self_fed(self, tokens, token_lengths, inputs, steps, noise, generator, pointers=None) -> torch.Tensor:
        """inputs (B, S - 1, rM) with a `self_feed` share of its groups replaced by the model's own
        prediction of them from the true history (the coarse group generation would feed back)."""
        hidden = self._audio_hidden(tokens, token_lengths, inputs, steps, pointers)[:, :-1]  # (B, S - 1, D)
        predicted = self.latent(hidden, noise[:, :-1].to(hidden.dtype))[0]  # (B, S - 1, rM)
        draw = torch.rand(inputs.shape[:2], generator=generator, device=generator.device if generator else None)
        return torch.where((draw.to(inputs.device) < self.config.self_feed)[..., None], predicted, inputs)

    # -- generation ----------------------------------------------------------------------------
    def prefill(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        groups: torch.Tensor,
        group_lengths: torch.Tensor,
        cache: KVCache | None = None,
        pointers: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Runs [phonemes ; BOS, groups] (rows left-padded) and returns the last hidden state.

        With an empty cache this fills it for `decode_step`; without one it is a plain
        (uncached) forward, which generation can repeat over a growing prefix.

        Args:
            tokens: (B, L) phonemes (prompt text + target text); token_lengths: (B,).
            groups: (B, G, r * M) normalised mel groups already known (the acoustic prompt, and
                in the uncached path the groups generated so far); G may be 0.
            group_lengths: (B,) real groups per row.
            cache: an empty cache from ``self.transformer.new_cache``, or None.
            pointers: (B, G + 1) the phoneme index (into ``tokens``) of the group each input predicts
                (groups 0 .. G; a model with ``phoneme_pointer`` needs them).

        Returns:
            (B, D) hidden state at each row's last position: it predicts group
            ``group_lengths`` (counting from 0), whose input position is ``group_lengths + 1``.
        """
        packed = self._pack(tokens, token_lengths, groups, group_lengths, pad_left=True, pointers=pointers)
        hidden = self.transformer(packed.values, packed.positions, packed.padding_mask, cache=cache)
        return hidden[:, -1]

    def decode_step(self, group: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                    pointer_input: torch.Tensor | None = None) -> torch.Tensor:
        """Feeds one group per row after `prefill`.

        Args:
            group: (B, r * M) the normalised group predicted at the previous step.
            positions: (B,) its audio positions.
            cache: the cache `prefill` filled; extended in place.
            pointer_input: (B, D) `phoneme_pointer.pointer_inputs` of the next group's pointer (a ``phoneme_pointer``
                needs it).

        Returns:
            (B, D) the hidden state that predicts the next group.
        """
        x = self.prenet(group[:, None])  # (B, 1, D)
        if self.pointer_embedding is not None:
            x = x + pointer_input[:, None].to(x.dtype)
        return self.transformer(x, positions[:, None], cache=cache)[:, -1]

    def predict_step(self, hidden: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) hidden, (B, r * M) eps -> coarse group (B, r * M), stop logit (B,)."""
        coarse, _, _ = self.latent(hidden, noise.to(hidden.dtype))
        return coarse, self.stop_head(hidden)

    def refine(self, coarse: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        """Post-net over generated frames: (B, T, M) normalised -> (B, T, M), zeros past lengths."""
        return self.postnet(coarse, lengths_to_mask(frame_lengths, coarse.shape[1]))

    def pointer_table(self, tokens: torch.Tensor, token_lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) phonemes, (B,) lengths -> (B, L, D), what an input pointing at each phoneme adds
        (`phoneme_pointer.pointer_table`; read at the pointers with `phoneme_pointer.pointer_inputs`)."""
        return phoneme_pointer.pointer_table(self.pointer_embedding, self.pointer_context, tokens, token_lengths)

    def _pack(self, tokens, token_lengths, groups, group_lengths, pad_left: bool, pointers=None) -> PackedRows:
        """[text ; BOS, prenet(groups)] per row; audio lengths are group_lengths + 1. ``pointers``
        (B, >= G + 1): the phoneme index of the group each input predicts, whose embedding is added."""
        batch = tokens.shape[0]
        text = self.text_embedding(tokens)  # (B, L, D)
        bos = self.bos.to(text.dtype).expand(batch, 1, -1)  # (B, 1, D)
        audio = torch.cat([bos, self.prenet(groups.to(text.dtype))], dim=1)  # (B, G + 1, D)
        if self.pointer_embedding is not None:
            if pointers is None:
                raise ValueError("this MELLE has a phoneme pointer: pass the pointers of the groups")
            audio = audio + phoneme_pointer.pointer_inputs(self.pointer_table(tokens, token_lengths),
                                                           pointers[:, : audio.shape[1]]).to(audio.dtype)
        return pack_segments([text, audio], [token_lengths, group_lengths + 1], pad_left=pad_left)
