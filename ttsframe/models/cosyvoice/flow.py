"""CosyVoice's conditional flow-matching decoder: speech tokens -> log-mel (Du et al., 2024,
CosyVoice 1 and 2, "conditional OT flow matching").

Speech tokens (25 or 50 Hz) are embedded and encoded by a non-causal transformer; a length
regulator interpolates the encodings to the mel rate (22050 / 256 Hz, not a multiple of the
token rate) and a projection gives ``mu`` (B, T_mel, n_mels). The estimator
(`flow_estimator.FlowEstimator`, a DiT) predicts the velocity that carries Gaussian noise x0
to the normalised mel x1 along x_t = (1 - (1 - sigma_min) t) x0 + t x1, given mu, a masked
prompt mel, a speaker embedding and t. One pattern from `flow_masks` (full, causal or chunk)
is applied to the encoder and the estimator, so the same weights serve offline and streaming
synthesis: with a chunk mask the first k mel chunks depend on the first k token chunks only.

Length regulation: in training each row's encodings are interpolated to its mel length (ratio
T_tok / T_mel of the row). In `sample` the prompt tokens are interpolated to the prompt mel's
frames and the target tokens to round(T_tok * mel_rate / token_rate) frames at the fixed
rate, so a target frame reads the same tokens whatever follows (streaming over a growing
prefix sees the same alignment).

Source and prior (options, off in CosyVoice's configuration): ``prior_weight`` adds Matcha-TTS's
prior loss, MSE(mu, x1), which makes mu a regression estimate of the mel; ``source="mu"`` starts
the flow from N(mu, I) instead of N(0, I) (Grad-TTS's terminal distribution), so the estimator
only carries the regression estimate to the data. ``speaker_mu`` conditions the encoder (and the
decoder) on the speaker embedding through adaptive layer norm: speaker-invariant tokens then give
a mu in the speaker's voice rather than the average of the training voices. ``decoder_layers``
adds blocks at the mel rate between the length regulator and mu (CosyVoice 2's encoder also has
blocks after its upsampling); they take the frame-level form of the same mask. The CPU preset
turns all four on; on the built-in corpus after 1,500 CPU steps mu alone is about as intelligible
as the sampled flow (docs/recipes/cosyvoice.md).

Normalisation: the model works on (mel - mean) / std per band (buffers, set with
`set_mel_stats`; identity by default); its public inputs and outputs are raw log-mel.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.models.cosyvoice.flow_config import FlowConfig
from ttsframe.models.cosyvoice.flow_estimator import FlowContext, FlowEstimator
from ttsframe.models.cosyvoice.flow_loss import FlowDraws, FlowPrediction, draw_step
from ttsframe.models.cosyvoice.flow_masks import MaskChoice, frame_mask, token_mask
from ttsframe.modules.packing import lengths_to_mask, pack_segments, take_segment
from ttsframe.modules.transformer import Transformer

_NOISE_BLOCK = 16  # frames of noise per draw at inference


def regulate_length(
    h: torch.Tensor,
    token_lengths: torch.Tensor,
    frame_lengths: torch.Tensor,
    n_frames: int,
    tokens_per_frame: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation of each row's token encodings to its frame count.

    Frame j reads token position p = (j + 1/2) a - 1/2, clamped to the row's tokens, with a the
    tokens per frame: the row's own T_tok / T_mel (F.interpolate(mode="linear") per row), or a
    fixed rate (inference: frame j then reads the same tokens however many follow).

    Args:
        h: (B, S, D) token encodings; token_lengths: (B,) real tokens.
        frame_lengths: (B,) frames wanted per row; n_frames: the padded width (>= the lengths).
        tokens_per_frame: the fixed rate a; None: each row's T_tok / T_mel.

    Returns:
        frames: (B, n_frames, D), zeros past the frame lengths.
        sources: (B, n_frames) long, ceil(p) before clamping to the row's last token: at least
            the latest token the frame reads (it sets the frame's chunk, see flow_masks).
    """
    token_lengths = token_lengths.to(h.device).long()
    frame_lengths = frame_lengths.to(h.device).long()
    if tokens_per_frame is None:
        rate = token_lengths.double() / frame_lengths.clamp(min=1).double()  # (B,)
    else:
        rate = torch.full(token_lengths.shape, float(tokens_per_frame), dtype=torch.float64, device=h.device)
    j = torch.arange(n_frames, device=h.device, dtype=torch.float64)
    p = ((j[None] + 0.5) * rate[:, None] - 0.5).clamp(min=0.0)  # (B, T)
    sources = p.ceil().long()
    last = (token_lengths - 1).clamp(min=0)[:, None]  # (B, 1)
    lo, hi = torch.minimum(p.floor().long(), last), torch.minimum(sources, last)
    if h.shape[1] == 0:  # no tokens at all (an empty prompt)
        return h.new_zeros(h.shape[0], n_frames, h.shape[2]), sources
    weight = (p - lo).clamp(0.0, 1.0).to(h.dtype)[..., None]  # (B, T, 1)

    def take(index):
        return h.gather(1, index[..., None].expand(-1, -1, h.shape[2]))  # (B, T, D)

    frames = (1 - weight) * take(lo) + weight * take(hi)
    return frames.masked_fill(~lengths_to_mask(frame_lengths, n_frames)[..., None], 0.0), sources


def time_grid(n_steps: int, schedule: str = "cosine", device=None) -> torch.Tensor:
    """(n_steps + 1,) Euler times from 0 to 1: i / N ("linear") or 1 - cos(pi/2 i / N) ("cosine")."""
    u = torch.linspace(0.0, 1.0, n_steps + 1, device=device)
    if schedule == "linear":
        return u
    if schedule == "cosine":
        return 1 - torch.cos(0.5 * math.pi * u)
    raise ValueError(f"unknown schedule {schedule!r}; valid: linear, cosine")


class CosyVoiceFlow(nn.Module):
    """Token embedding -> token encoder -> length regulator -> mu -> DiT estimator (CFM).

    Args:
        config: sizes, rates and training draws.
    """

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.n_speech, config.d_model)
        mu_cond = config.d_model if config.speaker_mu else None
        self.spk_to_mu_cond = nn.Linear(config.spk_dim, config.d_model, bias=False) if config.speaker_mu else None
        self.encoder = Transformer(config.transformer_config(config.encoder_layers, mu_cond))
        self.decoder = (Transformer(config.transformer_config(config.decoder_layers, mu_cond))
                        if config.decoder_layers else None)
        self.to_mu = nn.Linear(config.d_model, config.n_mels)
        self.estimator = FlowEstimator(config.n_mels, config.spk_dim,
                                       config.transformer_config(config.estimator_layers, config.d_model),
                                       config.time_dim)
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))

    def set_mel_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-band log-mel mean and std, (n_mels,) each, std > 0."""
        shape = (self.config.n_mels,)
        if tuple(mean.shape) != shape or tuple(std.shape) != shape or not bool((std > 0).all()):
            raise ValueError(f"mel stats need shape {shape} and std > 0, got {tuple(mean.shape)}, {tuple(std.shape)}")
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std)

    def _mu_cond(self, spk: torch.Tensor) -> torch.Tensor | None:
        """(B, D) adaptive-norm condition of the encoder and decoder, or None without ``speaker_mu``."""
        if self.spk_to_mu_cond is None:
            return None
        return self.spk_to_mu_cond(F.normalize(spk.float(), dim=-1))

    def encode(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mask: MaskChoice,
               spk: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) speech tokens -> (B, S, D) encodings under ``mask`` at the token rate; ``spk``
        (B, spk_dim) is read only with ``speaker_mu``."""
        batch, length = tokens.shape
        positions = torch.arange(length, device=tokens.device).expand(batch, length)
        if self.config.speaker_mu and spk is None:
            raise ValueError("this flow has speaker_mu: pass spk to encode")
        return self.encoder(self.token_embedding(tokens), positions, lengths_to_mask(token_lengths, length),
                            cond=self._mu_cond(spk), attn_mask=token_mask(mask, length, tokens.device))

    def regress(self, frames: torch.Tensor, frame_lengths: torch.Tensor, spk: torch.Tensor,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """mu (B, T, M), normalised, from the regulated encodings (B, T, D) under the frame mask
        ``attn_mask`` (`flow_masks.frame_mask`; None: full); zeros past the lengths."""
        padding = lengths_to_mask(frame_lengths.to(frames.device), frames.shape[1])  # (B, T)
        if self.decoder is not None:
            positions = torch.arange(frames.shape[1], device=frames.device).expand(frames.shape[0], -1)
            frames = self.decoder(frames, positions, padding, cond=self._mu_cond(spk), attn_mask=attn_mask)
        return self.to_mu(frames).masked_fill(~padding[..., None], 0.0)

    def _context(self, frames, sources, frame_lengths, prompt, spk, mask: MaskChoice) -> FlowContext:
        padding = lengths_to_mask(frame_lengths.to(frames.device), frames.shape[1])  # (B, T)
        attn_mask = frame_mask(mask, sources)
        mu = self.regress(frames, frame_lengths, spk, attn_mask)  # (B, T, M)
        return FlowContext(mu, prompt, F.normalize(spk.to(mu.dtype), dim=-1), padding, attn_mask)

    # -- training ------------------------------------------------------------------------------
    def forward(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        spk: torch.Tensor,
        draws: FlowDraws | None = None,
        generator: torch.Generator | None = None,
    ) -> FlowPrediction:
        """One CFM training step's prediction.

        Args:
            tokens: (B, T_tok) speech tokens, padded; token_lengths: (B,).
            mel: (B, T_mel, M) raw log-mel, padded; mel_lengths: (B,).
            spk: (B, spk_dim) speaker embeddings.
            draws: the step's random choices; None: drawn from ``generator`` (or the global RNG).

        Returns:
            `FlowPrediction` over T_mel frames (normalised mel space); `flow_loss.cfm_loss` of it.
        """
        n_frames = mel.shape[1]
        draws = draws if draws is not None else draw_step(self.config, mel_lengths, n_frames, generator)
        padding = lengths_to_mask(mel_lengths, n_frames)  # (B, T)
        x1 = self.normalize(mel.float()).masked_fill(~padding[..., None], 0.0)  # (B, T, M)
        prompt_lengths = draws.prompt_lengths.to(mel.device) * draws.keep.to(mel.device)  # dropped: no prompt
        in_prompt = lengths_to_mask(prompt_lengths, n_frames)  # (B, T)
        encodings = self.encode(tokens, token_lengths, draws.mask, spk)  # (B, T_tok, D)
        frames, sources = regulate_length(encodings, token_lengths, mel_lengths, n_frames)
        ctx = self._context(frames, sources, mel_lengths, x1 * in_prompt[..., None], spk, draws.mask)

        x0 = self._source(draws.noise.to(x1), ctx.mu)
        t = draws.t.to(x1)[:, None, None]  # (B, 1, 1)
        x_t = (1 - (1 - self.config.sigma_min) * t) * x0 + t * x1
        target = x1 - (1 - self.config.sigma_min) * x0
        velocity = self.estimator(x_t, draws.t.to(x1), ctx.dropped(draws.keep.to(mel.device)))
        prior = ((ctx.mu - x1) ** 2).mean(-1) if self.config.prior_weight > 0 else None  # (B, T)
        return FlowPrediction(velocity, target, padding & ~in_prompt, prior)

    # -- inference -----------------------------------------------------------------------------
    def velocity(self, x: torch.Tensor, t: torch.Tensor, ctx: FlowContext, cfg_scale: float = 0.7) -> torch.Tensor:
        """Guided velocity (1 + w) v(x | ctx) - w v(x | no conditions), w = ``cfg_scale``: (B, T, M)."""
        if cfg_scale == 0:
            return self.estimator(x, t, ctx)
        both = self.estimator(torch.cat([x, x]), torch.cat([t, t]), ctx.stacked(ctx.dropped()))
        conditional, unconditional = both.chunk(2)
        return (1 + cfg_scale) * conditional - cfg_scale * unconditional

    @torch.no_grad()
    def sample(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        spk: torch.Tensor,
        prompt_tokens: torch.Tensor | None = None,
        prompt_mel: torch.Tensor | None = None,
        *,
        prompt_token_lengths: torch.Tensor | None = None,
        prompt_mel_lengths: torch.Tensor | None = None,
        n_steps: int = 10,
        cfg_scale: float = 0.7,
        schedule: str = "cosine",
        mask_mode: str = "full",
        temperature: float = 1.0,
        seed: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-shot synthesis: Euler steps of the guided velocity from t = 0 to 1.

        The prompt tokens are prepended to the target tokens and the prompt mel conditions the
        prompt frames; only the target frames come back. Row i's noise covers its prompt + target
        frames and is its own draw: from ``generator[i]`` (a sequence), else from a generator
        seeded ``seed + i``, else from ``generator`` or the global RNG row after row; with a
        sequence or a seed it does not depend on the other rows, and a streaming caller that
        passes the same seed over a growing token prefix gets the same noise frames.

        Args:
            tokens: (B, T_tok) target speech tokens; token_lengths: (B,).
            spk: (B, spk_dim) speaker embedding of the prompt speaker.
            prompt_tokens: (B, P) speech tokens of the prompt, or None.
            prompt_mel: (B, F, M) raw log-mel of the prompt, or None.
            prompt_token_lengths, prompt_mel_lengths: (B,); None: the full widths.
            n_steps: Euler steps.
            cfg_scale: w of classifier-free guidance; 0: conditional velocity only.
            schedule: "cosine" or "linear" time grid (`time_grid`).
            mask_mode: "full" (offline), "causal", or "chunk" (C = ``config.chunk_tokens``;
                streaming: run it on the tokens received so far, keep the completed chunks).
            temperature: scale of the starting noise (Matcha-TTS's temperature; < 1 with
                ``source="mu"`` starts nearer the regression estimate mu).
            seed, generator: the noise source, see above.
            noise: (B, >= F + T_mel, M) x0 itself, row i reading its first F_i + T_mel_i frames.

        Returns:
            mel: (B, T_mel, M) raw log-mel of the targets, zeros past each row's length.
            mel_lengths: (B,) long, round(T_tok * mel_rate / token_rate).
        """
        c = self.config
        device, batch = tokens.device, tokens.shape[0]
        mask = MaskChoice(mask_mode, c.chunk_tokens if mask_mode == "chunk" else None)
        token_lengths = token_lengths.to(device).long()
        prompt_tokens = tokens.new_zeros(batch, 0) if prompt_tokens is None else prompt_tokens.to(device)
        prompt_mel = torch.zeros(batch, 0, c.n_mels) if prompt_mel is None else prompt_mel
        prompt_mel = prompt_mel.to(device=device, dtype=torch.float32)
        p_tokens = _lengths(prompt_token_lengths, prompt_tokens)
        p_frames = _lengths(prompt_mel_lengths, prompt_mel)
        mel_lengths = torch.floor(token_lengths.double() * c.frames_per_token + 0.5).long()  # (B,)
        width = int(mel_lengths.max()) if batch else 0

        packed = pack_segments([prompt_tokens, tokens], [p_tokens, token_lengths])
        encodings = self.encode(packed.values, p_tokens + token_lengths, mask, spk)  # (B, S, D)
        prompt_h, prompt_src = regulate_length(encodings[:, : prompt_tokens.shape[1]], p_tokens, p_frames,
                                               prompt_mel.shape[1])
        target_h, target_src = regulate_length(take_segment(encodings, packed.starts[:, 1], tokens.shape[1]),
                                               token_lengths, mel_lengths, width, 1 / c.frames_per_token)
        lengths = [p_frames, mel_lengths]
        frames = pack_segments([prompt_h, target_h], lengths)  # (B, S_mel, D)
        sources = pack_segments([prompt_src[..., None], (target_src + p_tokens[:, None])[..., None]], lengths)
        prompt = pack_segments([self.normalize(prompt_mel), prompt_mel.new_zeros(batch, width, c.n_mels)],
                               lengths).values  # (B, S_mel, M)
        ctx = self._context(frames.values, sources.values[..., 0], p_frames + mel_lengths, prompt, spk, mask)

        x0 = row_noise(p_frames + mel_lengths, frames.values.shape[1], c.n_mels, self.mel_mean.device, seed, generator,
                       noise)
        x = self._source(temperature * x0, ctx.mu)  # (B, S_mel, M)
        grid = time_grid(n_steps, schedule, device)
        for i in range(n_steps):
            x = x + (grid[i + 1] - grid[i]) * self.velocity(x, grid[i].expand(batch), ctx, cfg_scale)
        mel = self.denormalize(take_segment(x, frames.starts[:, 1], width))  # (B, T_mel, M)
        return mel.masked_fill(~lengths_to_mask(mel_lengths, width)[..., None], 0.0), mel_lengths

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., M) raw log-mel -> the model's standardised space."""
        return (mel - self.mel_mean) / self.mel_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., M) standardised -> raw log-mel."""
        return x * self.mel_std + self.mel_mean

    def _source(self, noise: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """x0 from the unit noise (B, T, M): the noise, or the noise around mu (``source="mu"``;
        mu is zero at padded frames, so they stay pure noise there)."""
        return noise + mu if self.config.source == "mu" else noise


def row_noise(lengths: torch.Tensor, width: int, n_mels: int, device, seed: int | None = None,
              generator: torch.Generator | Sequence[torch.Generator] | None = None,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """x0 (B, width, M) of a sampling call: `noise` itself when given, else each row's first
    ``lengths[i]`` frames drawn for that row alone (from ``generator[i]``, a generator seeded
    ``seed + i``, or ``generator`` / the global RNG), in blocks of a fixed size, so a longer draw
    from the same seed starts with the shorter one."""
    if noise is not None:
        return noise[:, :width].to(device=device, dtype=torch.float32)
    x0 = torch.zeros(len(lengths), width, n_mels, device=device)
    for i, n in enumerate(lengths.tolist()):
        if isinstance(generator, Sequence):
            g = generator[i]
        elif seed is not None:
            g = torch.Generator().manual_seed(seed + i)
        else:
            g = generator
        blocks = [torch.randn((_NOISE_BLOCK, n_mels), generator=g, device=g.device if g is not None else "cpu")
                  for _ in range(-(-n // _NOISE_BLOCK))]
        if blocks:
            x0[i, :n] = torch.cat(blocks)[:n].to(device)
    return x0


def _lengths(lengths: torch.Tensor | None, padded: torch.Tensor) -> torch.Tensor:
    """(B,) long lengths on padded's device; None: padded's full width for every row."""
    if lengths is None:
        return torch.full((padded.shape[0],), padded.shape[1], dtype=torch.long, device=padded.device)
    return lengths.to(padded.device).long()
