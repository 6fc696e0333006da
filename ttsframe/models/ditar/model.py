"""DiTAR: a causal language model over patches of continuous frames, and a local diffusion
transformer that generates each patch (Jia et al., 2025).

The frames (`patches.py`: standardised log-mel by default) are cut into patches of P frames.
One causal transformer (the LM) reads a packed row [text_i ; BOS, LocEnc(patch 0), ...,
LocEnc(patch N-2) ; pad ...] (`ttsframe.modules.packing`; each segment starts at rotary
position 0). Its hidden state h_i at audio position i conditions the generation of patch i:
LocDiT (`locdit.py`) denoises patch i given h_i and the K patches before it, trained with the
v-prediction objective of `diffusion.py`; a stop head (a small MLP on h_i, its gradient into the LM
scaled down: `ttsframe.modules.stop_head`) says whether patch i is the last. Training is teacher-forced (the input at position i >= 1 is the encoding
of the *target* patch i - 1, and LocDiT's history is the target patches), and drops h_i to zeros
for a share ``cfg_drop_prob`` of the patches, which trains the unconditional LocDiT that
classifier-free guidance needs. The loss lives in `loss.py`, decoding in `generate.py`.

Zero-shot prompting: the LM reads [prompt text + target text ; BOS, prompt patches] and the
model continues the patches (the prompt's last patches are the first patch's history).

Normalisation (as MELLE's): the model works on per-bin standardised log-mel, (mel - mean) / std;
``mel_mean`` and ``mel_std`` (n_mels,) are buffers, identity until `set_mel_stats` is called
(``mel_stats_fitted`` says whether it was). The padding frames of a row's last patch are
zeros, masked out of the loss; generation returns whole patches, cut to the frame budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsframe.models.ditar.diffusion import add_noise, training_times, v_target
from ttsframe.models.ditar.locdit import LocDiT
from ttsframe.models.ditar.locenc import LocEnc
from ttsframe.models.ditar.loss import DiTARPrediction
from ttsframe.models.ditar.patches import (
    PATCH_SIZES, REPRESENTATIONS, build_representation, frames_to_patches, history_patches, patches_for,
)
from ttsframe.modules.aligner import AlignerConfig, ForwardSumAligner
from ttsframe.modules.duration_plan import DurationPredictor, steps_per_phoneme
from ttsframe.modules.kv_cache import KVCache
from ttsframe.modules import mel_norm
from ttsframe.modules.packing import PackedRows, lengths_to_mask, pack_segments, take_segment
from ttsframe.modules import phoneme_pointer
from ttsframe.modules.stop_head import StopHead, scale_gradient
from ttsframe.modules.transformer import Transformer, TransformerConfig

_STACKS = ("", "locenc_", "locdit_")  # field prefixes of the LM, LocEnc and LocDiT sizes
ALIGNMENT_TARGETS = ("diagonal", "aligner")


@dataclass
class DiTARConfig:
    vocab_size: int  # text (phoneme) vocabulary, <pad> = 0
    n_mels: int = 80
    representation: str = "mel"  # a key of patches.REPRESENTATIONS
    patch_size: int = 4  # P, frames per patch (1, 2, 4 or 8)
    history: int = 2  # K, patches before the target that LocDiT reads (0: none)
    d_model: int = 1024  # the causal LM
    n_heads: int = 16
    n_layers: int = 24
    ffn_dim: int = 4096
    locenc_d_model: int = 1024  # the aggregation encoder
    locenc_n_heads: int = 16
    locenc_n_layers: int = 4
    locenc_ffn_dim: int = 4096
    locdit_d_model: int = 1024  # the local diffusion transformer
    locdit_n_heads: int = 16
    locdit_n_layers: int = 4
    locdit_ffn_dim: int = 4096
    time_dim: int = 256  # sinusoidal embedding of the diffusion time
    dropout: float = 0.1  # all three transformers
    activation: str = "gelu"  # or "swiglu"
    bias: bool = True
    rope_base: float = 10_000.0
    cfg_drop_prob: float = 0.1  # share of training patches whose h_i is zeroed (classifier-free guidance)
    # Share of training patches whose LocDiT sees no history patches (as the first patch does), so
    # that h_i, the LM's and so the text's only path, has to carry the patch: with the history always
    # there, LocDiT took each patch from its 2 clean history patches (v-error at t = 1: 0.129 with
    # h_i, 0.148 with h_i = 0, 2.39 without the history) and the LM learned no text (reliance 0.0008).
    history_dropout: float = 0.0
    # Dropout on the LM's patch inputs (LocEnc outputs) in training: Tacotron's pre-net trick, an
    # AR model that cannot lean on its audio past has to read the text (`val/text_reliance`).
    input_dropout: float = 0.0
    # Guided attention (`ttsframe.modules.guided_attention`): the first ``alignment_heads`` heads of
    # LM layer ``alignment_layer`` are trained to look at the text along the diagonal (0: off).
    alignment_heads: int = 0
    alignment_layer: int = 1
    # Where those heads should look: "diagonal" (a linear prior) or "aligner" (the phoneme each patch
    # speaks, from a forward-sum aligner trained alongside: `ttsframe.modules.aligner`).
    alignment_target: str = "diagonal"
    aligner_d_model: int = 128
    # Phoneme pointer (VALL-E R's monotonic alignment, as we read it): each LM input also carries the
    # embedding of the phoneme its patch speaks (the aligner's in training), and an advance head on
    # h_i predicts how many phonemes patch i + 1 moves on (0 .. max_advance - 1); generation follows
    # the head. Needs no guided heads; trains the aligner alongside.
    phoneme_pointer: bool = False
    max_advance: int = 4
    # Factor on the gradient the advance head sends into the LM (as the stop head's): unscaled, the
    # advance cross-entropy's gradient on the LM's last layer was ~40x the diffusion's (0.145 vs 0.0037).
    advance_grad_scale: float = 1.0
    # A duration plan (`ttsframe.modules.duration_plan`, as MELLE's): a text-only predictor of each
    # phoneme's patches, trained on the aligner's; generation follows the track it plans (scaled to the
    # prompt's pace) instead of the advance head's moves (`DiTARSamplingOptions.follow_plan`).
    duration_plan: bool = False
    # With a phoneme pointer: conv layers encoding the text around each phoneme, added at the pointer
    # (`phoneme_pointer.PhonemeContext`, as MELLE's; 0: the pointed phoneme's embedding alone).
    pointer_context: int = 0
    time_logit_mean: float | None = None  # training's diffusion times: None uniform, else logit-normal (diffusion.py)
    # Regression prior (Grad-TTS's prior, CosyVoice flow_cpu's `source: mu`, per patch): a head on h_i
    # regresses the patch (mu_i, squared error); LocDiT then models the residual x0 - mu_i, and a
    # sample is mu_i plus LocDiT's residual (`nfe=0`: mu_i alone). A model trained for minutes gets
    # a blurred patch from the regression and leaves LocDiT only the detail.
    regression_prior: bool = False
    # Scheduled sampling (MELLE's `self_feed`), with a regression prior: this share of the LM's input
    # patches is the prior's own prediction of that patch from the true past (one extra no-grad pass)
    # instead of the recording's. Teacher-forced, the prior read the text (error 0.021, 0.054 with
    # another row's) while free-running it babbled (WER 1.01): the LM had only seen true pasts.
    self_feed: float = 0.0
    # The stop head (`ttsframe.modules.stop_head`): an MLP of this width (0: one linear layer) whose
    # gradient into the LM is scaled by ``stop_grad_scale``. At 1 and linear, the stop gradient was
    # ~50x the diffusion gradient on the LM's last layer and the LM stopped reading the text.
    stop_hidden: int = 64
    stop_grad_scale: float = 0.02

    def __post_init__(self):
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {self.representation!r}; valid: {', '.join(REPRESENTATIONS)}")
        if self.patch_size not in PATCH_SIZES:
            raise ValueError(f"patch_size must be one of {PATCH_SIZES}, got {self.patch_size}")
        sizes = tuple(prefix + name for prefix in _STACKS for name in ("n_layers", "ffn_dim"))
        for name in ("vocab_size", "n_mels", "time_dim") + sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for prefix in _STACKS:
            width, heads = getattr(self, prefix + "d_model"), getattr(self, prefix + "n_heads")
            if heads < 1 or width % heads or (width // heads) % 2:
                raise ValueError(f"{prefix}d_model {width} must be a multiple of {prefix}n_heads {heads} "
                                 "with an even head size (rotary embeddings)")
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even, got {self.time_dim}")
        if not 0 <= self.alignment_heads <= self.n_heads:
            raise ValueError(f"alignment_heads must be in [0, n_heads={self.n_heads}], got {self.alignment_heads}")
        if self.alignment_heads and not 0 <= self.alignment_layer < self.n_layers:
            raise ValueError(f"alignment_layer must be in [0, n_layers={self.n_layers}), got {self.alignment_layer}")
        if self.alignment_target not in ALIGNMENT_TARGETS:
            raise ValueError(f"alignment_target must be one of {', '.join(ALIGNMENT_TARGETS)}, got {self.alignment_target!r}")
        if self.max_advance < 2:
            raise ValueError(f"max_advance must be >= 2, got {self.max_advance}")
        if self.history < 0:
            raise ValueError(f"history must be >= 0, got {self.history}")
        if not 0.0 <= self.self_feed <= 1.0:
            raise ValueError(f"self_feed must be in [0, 1], got {self.self_feed}")
        if self.self_feed > 0 and not self.regression_prior:
            raise ValueError("self_feed needs regression_prior=true (the fed patches are the prior's)")
        if not 0.0 <= self.advance_grad_scale <= 1.0:
            raise ValueError(f"advance_grad_scale must be in [0, 1], got {self.advance_grad_scale}")
        if self.duration_plan and not self.phoneme_pointer:
            raise ValueError("duration_plan needs phoneme_pointer=true (it plans the pointer's track)")
        if self.pointer_context and not self.phoneme_pointer:
            raise ValueError("pointer_context needs phoneme_pointer=true (it encodes the pointed phoneme's text)")
        for name in ("dropout", "cfg_drop_prob", "input_dropout", "history_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def transformer_config(self, stack: str = "") -> TransformerConfig:
        """Sizes of the LM (``stack`` ""), LocEnc ("locenc_") or LocDiT ("locdit_")."""
        width = getattr(self, stack + "d_model")
        return TransformerConfig(
            d_model=width, n_heads=getattr(self, stack + "n_heads"), n_layers=getattr(self, stack + "n_layers"),
            ffn_dim=getattr(self, stack + "ffn_dim"), dropout=self.dropout, causal=stack == "",
            activation=self.activation, cond_dim=width if stack == "locdit_" else None, bias=self.bias,
            rope_base=self.rope_base,
        )


class DiTAR(nn.Module):
    """Text embedding + LocEnc -> causal LM -> LocDiT (per patch) and stop head.

    Args:
        config: sizes; ``config.patch_size`` fixes the frames per LM step.
    """

    def __init__(self, config: DiTARConfig):
        super().__init__()
        self.config = config
        self.representation = build_representation(config.representation, config.n_mels)
        frame_dim, d_model = self.representation.dim, config.d_model
        self.text_embedding = nn.Embedding(config.vocab_size, d_model)
        nn.init.normal_(self.text_embedding.weight, std=0.02)
        self.bos = nn.Parameter(torch.randn(d_model) * 0.02)  # input of the first audio position
        self.locenc = LocEnc(frame_dim, d_model, config.transformer_config("locenc_"))
        self.input_dropout = nn.Dropout(config.input_dropout)  # on LocEnc's outputs as LM inputs
        self.lm = Transformer(config.transformer_config())
        self.stop_head = StopHead(d_model, config.stop_hidden, config.stop_grad_scale)
        self.locdit = LocDiT(frame_dim, d_model, config.transformer_config("locdit_"), config.time_dim)
        self.aligner = None  # trained alongside, where guided heads look where it says or a pointer reads it
        if config.phoneme_pointer or (config.alignment_heads and config.alignment_target == "aligner"):
            self.aligner = ForwardSumAligner(AlignerConfig(config.vocab_size, frame_dim, config.aligner_d_model))
        self.pointer_embedding = self.pointer_context = self.advance_head = self.duration_predictor = None
        if config.phoneme_pointer:
            self.pointer_embedding = nn.Embedding(config.vocab_size, d_model)
            nn.init.normal_(self.pointer_embedding.weight, std=0.02)
            if config.pointer_context:
                self.pointer_context = phoneme_pointer.PhonemeContext(config.vocab_size, d_model,
                                                                      config.pointer_context)
            self.advance_head = nn.Linear(d_model, config.max_advance)
        if config.duration_plan:
            self.duration_predictor = DurationPredictor(config.vocab_size)
        self.prior_head = None
        if config.regression_prior:
            self.prior_head = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(),
                                            nn.Linear(d_model, config.patch_size * frame_dim))
        mel_norm.register_mel_stats(self, config.n_mels)

    # -- normalisation and representation ---------------------------------------------------
    def set_mel_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Sets the per-bin log-mel statistics, (n_mels,) each; std must be > 0."""
        mel_norm.set_mel_stats(self, mean, std)

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., M) log-mel -> standardised."""
        return mel_norm.normalize(self, mel)

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., M) standardised -> log-mel."""
        return mel_norm.denormalize(self, mel)

    def to_frames(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, M) log-mel (any values past the lengths), (B,) -> (B, T', D) frames, (B,) lengths."""
        mask = lengths_to_mask(mel_lengths, mel.shape[1])[..., None]  # (B, T, 1)
        return self.representation.encode(self.normalize(mel.float()).masked_fill(~mask, 0.0), mel_lengths)

    def to_mel(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T', D) frames, (B,) -> (B, T, M) log-mel, (B,) mel lengths."""
        mel, mel_lengths = self.representation.decode(frames, lengths)
        return self.denormalize(mel), mel_lengths

    # -- training ----------------------------------------------------------------------------
    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> DiTARPrediction:
        """Teacher-forced LM over every patch, then LocDiT on one noisy draw of each real patch.

        Args:
            text: (B, L) phoneme ids, padded; text_lengths: (B,).
            mel: (B, T, M) log-mel (not normalised), padded (any value past the lengths).
            mel_lengths: (B,) real frames per row (>= 1).
            generator: random source of the diffusion times, the noise and (in training) the CFG drops.

        Returns:
            `DiTARPrediction` over N = ceil(T' / P) patches.
        """
        frames, lengths = self.to_frames(mel, mel_lengths)  # (B, T', D), (B,)
        patches, frame_mask = frames_to_patches(frames, lengths, self.config.patch_size)  # (B, N, P, D), (B, N, P)
        n_patches = patches_for(lengths, self.config.patch_size)  # (B,)
        patch_mask = lengths_to_mask(n_patches, patches.shape[1])  # (B, N)
        aligner_loss, aligned = self.align(text, text_lengths, frames, lengths, patches.shape[1])  # (), (B, N)
        pointers = aligned if self.config.phoneme_pointer else None
        inputs = patches  # (B, N, P, D): what the LM reads (the true past, or with self_feed partly its own)
        if self.training and self.config.self_feed > 0:
            inputs = self._self_fed(text, text_lengths, patches, frame_mask, n_patches, pointers, generator)
        hidden, text_attention = self.lm_hidden(text, text_lengths, inputs, n_patches, pointers)  # (B, N, d), (B, H', N, L)

        device = generator.device if generator is not None else mel.device
        rows = int(patch_mask.sum())
        t = training_times(rows, generator, mel.device, self.config.time_logit_mean)  # (R,)
        noise = torch.randn((rows,) + patches.shape[2:], generator=generator, device=device).to(mel.device)
        keep = torch.rand(rows, generator=generator, device=device).to(mel.device) >= self.config.cfg_drop_prob
        with_history = None
        if self.training and self.config.history_dropout > 0:
            draw = torch.rand(rows, generator=generator, device=device).to(mel.device)
            with_history = draw >= self.config.history_dropout  # (R,)
        prior = self.prior(hidden)  # (B, N, P, D) or None
        v_pred, v_true = self.local_prediction(hidden, patches, patch_mask, t, noise, keep if self.training else None,
                                               None if prior is None else prior.detach(), with_history)

        stop_targets = torch.zeros(patch_mask.shape, device=mel.device)
        stop_targets = stop_targets.scatter(1, (n_patches - 1).clamp(min=0)[:, None], 1.0)
        stop_logits = self.stop_logit(hidden)  # (B, N)
        advance = None
        if pointers is not None:  # patch i's head predicts the move to patch i + 1 (none after the last)
            moves = phoneme_pointer.advance_targets(pointers, self.config.max_advance)  # (B, N - 1)
            logits = self.advance_head(scale_gradient(hidden[:, :-1], self.config.advance_grad_scale))
            advance = (logits, moves, patch_mask[:, 1:])
        durations = None
        if self.duration_predictor is not None:  # the aligner's patches per phoneme, the plan's target
            durations = (self.duration_predictor(text, text_lengths),
                         steps_per_phoneme(pointers, n_patches, text.shape[1]), text_lengths)  # (B, L), (B, L), (B,)
        return DiTARPrediction(v_pred, v_true, frame_mask, stop_logits, stop_targets, patch_mask,
                               text_attention, text_lengths, aligner_loss, aligned, advance,
                               None if prior is None else (prior, patches), durations)

    def _self_fed(self, text, text_lengths, patches, frame_mask, n_patches, pointers, generator) -> torch.Tensor:
        """patches (B, N, P, D) with a ``self_feed`` share replaced by the prior's prediction of them
        from the true past (no gradient), zeros past the real frames."""
        with torch.no_grad():
            predicted = self.prior(self.lm_hidden(text, text_lengths, patches, n_patches, pointers)[0])  # (B, N, P, D)
        device = generator.device if generator is not None else patches.device
        draw = torch.rand(patches.shape[:2], generator=generator, device=device).to(patches.device)  # (B, N)
        fed = torch.where((draw < self.config.self_feed)[..., None, None], predicted.to(patches.dtype), patches)
        return fed * frame_mask[..., None]

    def align(self, text, text_lengths, frames, lengths, n_patches: int):
        """With an aligner: its forward-sum loss and each patch's phoneme (that of its middle frame),
        (B, N) long; else (None, None). frames (B, T', D) standardised, zeros past ``lengths``."""
        if self.aligner is None:
            return None, None
        return phoneme_pointer.aligned_steps(self.aligner, text, text_lengths, frames, lengths, n_patches,
                                             self.config.patch_size)

    def lm_hidden(
        self, text: torch.Tensor, text_lengths: torch.Tensor, patches: torch.Tensor, n_patches: torch.Tensor,
        pointers: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced LM states: (B, N, d), where h_i (conditioning patch i) has read patches < i;
        and, with ``config.alignment_heads``, those heads' attention from the N audio steps to the
        text, (B, H', N, L) (else None).

        Args:
            text: (B, L) phonemes; text_lengths: (B,).
            patches: (B, N, P, D) the target patches; n_patches: (B,) real ones per row (>= 1).
            pointers: (B, N) the phoneme each patch speaks (with ``config.phoneme_pointer``).
        """
        # Input i is BOS (i = 0) or patch i - 1; the last patch is never an input.
        packed = self._pack(text, text_lengths, patches[:, :-1], n_patches - 1, pad_left=False, pointers=pointers)
        heads = self.config.alignment_heads
        layers = (self.config.alignment_layer,) if heads else ()
        hidden, attention = self.lm.forward_with_attention(
            packed.values, packed.positions, packed.padding_mask, layers=layers)  # (B, S_all, d), [(B, H, S, S)]
        audio_start, n_steps = packed.starts[:, 1], patches.shape[1]
        text_attention = None
        if heads:
            # Text starts at column 0 (right padding); audio step i at column audio_start + i.
            by_query = attention[0][:, :heads].permute(0, 2, 1, 3)  # (B, S, H', S)
            text_attention = take_segment(by_query, audio_start, n_steps)[..., : text.shape[1]].transpose(1, 2)
        return take_segment(hidden, audio_start, n_steps), text_attention

    def local_prediction(
        self,
        hidden: torch.Tensor,
        patches: torch.Tensor,
        patch_mask: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        keep: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
        with_history: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LocDiT's v-prediction and the target v for every real patch (all at once, R rows).

        Args:
            hidden: (B, N, d) h_i per patch; patches: (B, N, P, D) clean; patch_mask: (B, N).
            t: (R,) diffusion times and noise (R, P, D) eps, for the R real patches in row-major order.
            keep: (R,) bool, False where h_i is replaced by zeros (CFG); None keeps every h_i.
            prior: (B, N, P, D) the regression prior mu (detached): LocDiT's clean target is then
                x0 - mu; its history stays the clean patches.
            with_history: (R,) bool, False where LocDiT sees no history patches (`history_dropout`);
                None: every patch sees its history.

        Returns:
            v_pred, v_target: (B, N, P, D) each, zeros at padding patches.
        """
        history, history_mask = history_patches(patches, self.config.history)  # (B, N, K, P, D), (N, K)
        history_mask = history_mask.expand(patches.shape[0], -1, -1)  # (B, N, K)
        cond = hidden[patch_mask]  # (R, d)
        if keep is not None:
            cond = cond * keep[:, None].to(cond.dtype)
        x0 = patches[patch_mask] if prior is None else (patches - prior)[patch_mask]  # (R, P, D)
        history_mask = history_mask[patch_mask]  # (R, K)
        if with_history is not None:
            history_mask = history_mask & with_history[:, None]
        v_real = self.locdit(add_noise(x0, noise, t), t, cond, history[patch_mask], history_mask)
        v_pred = torch.zeros_like(patches, dtype=v_real.dtype).masked_scatter(patch_mask[..., None, None], v_real)
        v_true = torch.zeros_like(patches).masked_scatter(patch_mask[..., None, None], v_target(x0, noise, t))
        return v_pred, v_true

    def prior(self, hidden: torch.Tensor) -> torch.Tensor | None:
        """(..., d) h_i -> (..., P, D) the regression prior mu_i of patch i; None without a prior head."""
        if self.prior_head is None:
            return None
        return self.prior_head(hidden).unflatten(-1, (self.config.patch_size, self.representation.dim))

    def stop_logit(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., d) h_i -> (...) logit that patch i is the last (as trained: offset by log pos_weight)."""
        return self.stop_head(hidden)

    def stop_probability(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., d) h_i -> (...) the calibrated probability that patch i is the last."""
        return self.stop_head.stop_probability(self.stop_head(hidden))

    # -- generation ----------------------------------------------------------------------------
    def prefill(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        patches: torch.Tensor,
        n_patches: torch.Tensor,
        cache: KVCache | None = None,
        pointers: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Runs [text ; BOS, patches] (rows left-padded) and returns each row's last hidden state.

        Args:
            text: (B, L) phonemes (prompt text + target text); text_lengths: (B,).
            patches: (B, G, P, D) patches already known (the acoustic prompt); G may be 0.
            n_patches: (B,) real ones per row.
            cache: an empty cache from ``self.lm.new_cache`` (filled for `decode_step`), or None.
            pointers: (B, G + 1) the phoneme of each input's patch (patches 0 .. G; the model's
                ``phoneme_pointer`` needs them), indices into ``text``.

        Returns:
            (B, d) h of patch ``n_patches`` (counting from 0), whose input position is ``n_patches + 1``.
        """
        packed = self._pack(text, text_lengths, patches, n_patches, pad_left=True, pointers=pointers)
        return self.lm(packed.values, packed.positions, packed.padding_mask, cache=cache)[:, -1]

    def decode_step(self, patch: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                    pointer_input: torch.Tensor | None = None) -> torch.Tensor:
        """Feeds one patch per row after `prefill`: (B, P, D) patch, (B,) its audio positions -> (B, d)
        the hidden state of the next patch; the cache is extended in place. ``pointer_input`` (B, d):
        `phoneme_pointer.pointer_inputs` of the next patch's pointer (the model's ``phoneme_pointer`` needs it)."""
        x = self.input_dropout(self.locenc(patch[:, None]))  # (B, 1, d)
        if self.pointer_embedding is not None:
            x = x + pointer_input[:, None].to(x.dtype)
        return self.lm(x, positions[:, None], cache=cache)[:, -1]

    def expected_advance(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, d) h_i -> (B,) float, how many phonemes patch i + 1 moves on, in expectation under the
        advance head. Generation adds these up (a patch is shorter than most phonemes, so "stay" is the
        likeliest move at nearly every step: following the argmax would never move on)."""
        return phoneme_pointer.expected_advance(self.advance_head(hidden))

    def pointer_table(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) phonemes, (B,) lengths -> (B, L, D), what an input pointing at each phoneme adds
        (`phoneme_pointer.pointer_table`; read at the pointers with `phoneme_pointer.pointer_inputs`)."""
        return phoneme_pointer.pointer_table(self.pointer_embedding, self.pointer_context, text, text_lengths)

    def _pack(self, text, text_lengths, patches, n_patches, pad_left: bool, pointers=None) -> PackedRows:
        """[text ; BOS, LocEnc(patches)] per row; audio lengths are n_patches + 1. ``pointers``
        (B, >= G + 1): the phoneme index of each input's patch, whose embedding is added."""
        embedded = self.text_embedding(text)  # (B, L, d)
        bos = self.bos.to(embedded.dtype).expand(text.shape[0], 1, -1)  # (B, 1, d)
        audio = torch.cat([bos, self.input_dropout(self.locenc(patches.to(embedded.dtype)))], dim=1)  # (B, G + 1, d)
        if self.pointer_embedding is not None:
            if pointers is None:
                raise ValueError("this DiTAR has a phoneme pointer: pass the pointers of the patches")
            audio = audio + phoneme_pointer.pointer_inputs(self.pointer_table(text, text_lengths),
                                                           pointers[:, : audio.shape[1]]).to(audio.dtype)
        return pack_segments([embedded, audio], [text_lengths, n_patches + 1], pad_left=pad_left)
