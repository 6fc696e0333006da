"""CosyVoice 2's flow as released (`flow.pt`, CausalMaskedDiffWithXvec): tokens -> log-mel.

    [prompt tokens ; tokens] -> embedding -> UpsampleConformerEncoder (x2: 25 Hz -> 50 Hz) -> Linear -> mu
    speaker embedding -> L2 normalise -> Linear -> (M,)
    x_0 ~ N(0, I) -> 10 Euler steps on a cosine time grid of the CausalUNetEstimator, classifier-free
    guidance 0.7 (conditions mu, speaker and prompt mel zeroed together) -> mel (B, M, T)

It sits beside our DiT flow (`flow.py`) as the cosyvoice family's second flow architecture
(`flow_build.build_flow` builds either from its config fields; presets `cosyvoice2_release` and
`cosyvoice2_tiny` here); `load_flow_checkpoint` reads the released `flow.pt`. Mel frames are
channels-first (B, M, T) inside, as the estimator and the release compute them; `generate` (one
utterance, the reference's call) takes and returns (T, M), and `sample` / `forward` have the DiT
flow's batched signatures, so the synthesizer and the flow task use either.

Training (`forward`): the CFM loss of `flow_loss` on this estimator, with CosyVoice 2's draws: t on
the cosine schedule, half the rows given a prompt prefix of up to 30% of their frames, 20% of the
rows with mu, speaker and prompt dropped together, half the batches under the chunk masks
(`streaming_prob`). Tokens and frames are cut to ratio x tokens per row, as CosyVoice 2's data
pipeline does. Unlike CosyVoice's loss, the prompt prefix (given as the condition) is left out
of it, as in the DiT flow's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.inference.state_map import renamer
from ttsframe.models.cosyvoice.flow import _lengths, row_noise, time_grid
from ttsframe.models.cosyvoice.flow_conformer import UpsampleConformerEncoder
from ttsframe.models.cosyvoice.flow_loss import FlowDraws, FlowPrediction, draw_step
from ttsframe.models.cosyvoice.flow_unet import CausalUNetEstimator
from ttsframe.modules.packing import lengths_to_mask, pack_segments, take_segment


@dataclass
class CosyVoice2FlowConfig:
    """Sizes; the defaults are CosyVoice2-0.5B's `flow.pt`."""

    n_speech: int = 6561
    n_mels: int = 80
    spk_dim: int = 192
    dim: int = 512  # token embedding and encoder width
    encoder_heads: int = 8
    encoder_ffn: int = 2048
    encoder_layers: int = 6
    up_layers: int = 4
    ratio: int = 2  # mel frames per token
    ahead: int = 3  # look-ahead tokens
    chunk_tokens: int = 25  # streaming chunk (tokens; x ratio frames in the estimator)
    channels: int = 256  # estimator width
    estimator_heads: int = 8
    head_dim: int = 64
    blocks_per_stage: int = 4
    mid_stages: int = 12
    encoder_dropout: float = 0.1  # training only
    sigma_min: float = 1e-6
    token_rate: float = 25.0  # speech tokens per second; the mel rate is ratio x this
    # training draws (`flow_loss.draw_step`), CosyVoice 2's
    cfg_dropout: float = 0.2  # rows with mu, speaker and prompt all dropped
    prompt_prob: float = 0.5  # rows given a prompt prefix of their own mel
    prompt_max_ratio: float = 0.3  # longest prefix, as a share of the row's frames
    streaming_prob: float = 0.5  # batches under the chunk masks
    t_schedule: str = "cosine"
    architecture: str = "cosyvoice2"  # what `flow_build.build_flow` builds from these fields

    @property
    def frames_per_token(self) -> int:
        return self.ratio

    @property
    def mask_probs(self) -> tuple[float, float, float, float]:
        """`flow_masks` draw: full or chunk C (this encoder has one chunk size)."""
        return (1.0 - self.streaming_prob, 0.0, self.streaming_prob, 0.0)


def cosyvoice2_release() -> CosyVoice2FlowConfig:
    """The released CosyVoice2-0.5B flow (112.5 M parameters)."""
    return CosyVoice2FlowConfig()


def cosyvoice2_tiny(n_speech: int = 50) -> CosyVoice2FlowConfig:
    """The same layout at a size for tests (~150k parameters with 50 tokens)."""
    return CosyVoice2FlowConfig(n_speech=n_speech, spk_dim=16, dim=32, encoder_heads=2, encoder_ffn=64,
                                encoder_layers=2, chunk_tokens=4, channels=16, estimator_heads=2, head_dim=8,
                                blocks_per_stage=1, mid_stages=2, encoder_dropout=0.0)


PRESETS = {"cosyvoice2_release": cosyvoice2_release, "cosyvoice2_tiny": cosyvoice2_tiny}


class CosyVoice2Flow(nn.Module):
    def __init__(self, config: CosyVoice2FlowConfig | None = None):
        super().__init__()
        self.config = c = config or CosyVoice2FlowConfig()
        self.token_embedding = nn.Embedding(c.n_speech, c.dim)
        self.spk_proj = nn.Linear(c.spk_dim, c.n_mels)
        self.encoder = UpsampleConformerEncoder(c.dim, c.encoder_heads, c.encoder_ffn, c.encoder_layers, c.up_layers,
                                                c.ratio, c.ahead, c.chunk_tokens, c.encoder_dropout)
        self.encoder_proj = nn.Linear(c.dim, c.n_mels)
        self.estimator = CausalUNetEstimator(c.n_mels, c.channels, c.blocks_per_stage, c.mid_stages,
                                             c.estimator_heads, c.head_dim, c.chunk_tokens * c.ratio)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor, streaming: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, L), lengths (B,) -> (mu (B, M, ratio * L), frame lengths (B,))."""
        real = (torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths[:, None])[..., None]
        x = self.token_embedding(tokens.clamp(min=0)) * real  # (B, L, D)
        h, frame_lengths = self.encoder(x, lengths, streaming)
        return self.encoder_proj(h).transpose(1, 2), frame_lengths

    def speaker(self, spk: torch.Tensor) -> torch.Tensor:
        """(B, spk_dim) speaker embeddings -> (B, M)."""
        return self.spk_proj(F.normalize(spk, dim=1))

    def velocity(self, x, mask, mu, t, spk, cond, cfg_scale: float = 0.7, streaming: bool = False) -> torch.Tensor:
        """Guided velocity (B, M, T): (1 + s) v(x | mu, spk, cond) - s v(x | zeros); one batched call."""
        if cfg_scale == 0.0:
            return self.estimator(x, mask, mu, t, spk, cond, streaming)
        v = self.estimator(torch.cat([x, x]), torch.cat([mask, mask]), torch.cat([mu, torch.zeros_like(mu)]),
                           torch.cat([t, t]), torch.cat([spk, torch.zeros_like(spk)]),
                           torch.cat([cond, torch.zeros_like(cond)]), streaming)
        conditional, unconditional = v.chunk(2)
        return (1.0 + cfg_scale) * conditional - cfg_scale * unconditional

    def solve(self, mu: torch.Tensor, mask: torch.Tensor, spk: torch.Tensor, cond: torch.Tensor,
              noise: torch.Tensor, n_steps: int = 10, cfg_scale: float = 0.7, temperature: float = 1.0,
              streaming: bool = False, schedule: str = "cosine") -> torch.Tensor:
        """Euler from x_0 = temperature * noise (B, M, T) on the `schedule` grid -> mel (B, M, T).

        Args:
            mu, cond: (B, M, T); mask (B, 1, T); spk: (B, M), already projected (`speaker`).
        """
        grid = time_grid(n_steps, schedule, device=mu.device).to(mu.dtype)  # (n_steps + 1,)
        x = noise.to(mu.dtype) * temperature
        for step in range(n_steps):
            t = grid[step].expand(mu.shape[0])
            x = x + (grid[step + 1] - grid[step]) * self.velocity(x, mask, mu, t, spk, cond, cfg_scale, streaming)
        return x

    @torch.inference_mode()
    def generate(self, tokens: torch.Tensor, prompt_tokens: torch.Tensor, prompt_mel: torch.Tensor,
                 spk: torch.Tensor, noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 n_steps: int = 10, cfg_scale: float = 0.7, streaming: bool = False) -> torch.Tensor:
        """One utterance: tokens (L,), prompt tokens (L_p,), prompt mel (T_p, M), spk (spk_dim,) ->
        mel (ratio * L, M) after the prompt. `noise` (M, ratio * (L_p + L)), else drawn from `generator`."""
        joined = torch.cat([prompt_tokens, tokens])[None]  # (1, L_p + L)
        mu, frames = self.encode(joined, torch.tensor([joined.shape[1]], device=joined.device), streaming)
        cond = torch.zeros_like(mu)
        cond[0, :, :prompt_mel.shape[0]] = prompt_mel.T.to(mu.dtype)
        if noise is None:
            noise = torch.randn(mu.shape[1:], generator=generator, device=mu.device)
        mask = torch.ones_like(mu[:, :1])
        mel = self.solve(mu, mask, self.speaker(spk[None].to(mu.dtype)), cond, noise[None], n_steps, cfg_scale,
                         streaming=streaming)
        return mel[0, :, prompt_mel.shape[0]:].T  # (ratio * L, M)

    @torch.no_grad()
    def sample(self, tokens: torch.Tensor, token_lengths: torch.Tensor, spk: torch.Tensor,
               prompt_tokens: torch.Tensor | None = None, prompt_mel: torch.Tensor | None = None, *,
               prompt_token_lengths: torch.Tensor | None = None, prompt_mel_lengths: torch.Tensor | None = None,
               n_steps: int = 10, cfg_scale: float = 0.7, schedule: str = "cosine", mask_mode: str = "full",
               temperature: float = 1.0, seed: int | None = None, generator=None, noise: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A padded batch, with `CosyVoiceFlow.sample`'s arguments and returns: tokens (B, L), spk
        (B, spk_dim), prompt tokens (B, P) and log-mel (B, F, M) -> target mel (B, ratio * L, M)
        (zeros past each row's length) and its lengths (B,). `mask_mode` "chunk" is streaming (the
        chunk masks), anything else offline. Each row's prompt is cut to ratio x tokens as CosyVoice
        2's frontend cuts it; its noise comes from `flow.row_noise` (seed + i per row)."""
        c, device, batch = self.config, tokens.device, tokens.shape[0]
        prompt_tokens = tokens.new_zeros(batch, 0) if prompt_tokens is None else prompt_tokens.to(device)
        prompt_mel = torch.zeros(batch, 0, c.n_mels) if prompt_mel is None else prompt_mel
        prompt_mel = prompt_mel.to(device=device, dtype=torch.float32)
        lengths = token_lengths.to(device).long()
        p_tokens = torch.minimum(_lengths(prompt_token_lengths, prompt_tokens),
                                 torch.div(_lengths(prompt_mel_lengths, prompt_mel), c.ratio, rounding_mode="floor"))
        joined = pack_segments([prompt_tokens, tokens], [p_tokens, lengths])  # (B, P + L)
        mu, frames = self.encode(joined.values, p_tokens + lengths, streaming=mask_mode == "chunk")  # (B, M, W)
        width = mu.shape[2]
        prompt = pack_segments([prompt_mel, prompt_mel.new_zeros(batch, width, c.n_mels)],
                               [c.ratio * p_tokens, c.ratio * lengths]).values[:, :width]  # (B, W, M)
        mask = lengths_to_mask(frames, width)[:, None].to(mu.dtype)  # (B, 1, W)
        x0 = row_noise(frames, width, c.n_mels, device, seed, generator, noise).transpose(1, 2)  # (B, M, W)
        x = self.solve(mu, mask, self.speaker(spk.to(mu.dtype)), prompt.transpose(1, 2) * mask, x0, n_steps,
                       cfg_scale, temperature, mask_mode == "chunk", schedule)
        mel_lengths = c.ratio * lengths
        mel = take_segment(x.transpose(1, 2), c.ratio * p_tokens, c.ratio * tokens.shape[1])  # (B, ratio * L, M)
        return mel.masked_fill(~lengths_to_mask(mel_lengths, mel.shape[1])[..., None], 0.0), mel_lengths

    def forward(self, tokens: torch.Tensor, token_lengths: torch.Tensor, mel: torch.Tensor, mel_lengths: torch.Tensor,
                spk: torch.Tensor, draws: FlowDraws | None = None, generator: torch.Generator | None = None
                ) -> FlowPrediction:
        """One CFM training step's prediction, with `CosyVoiceFlow.forward`'s arguments: tokens (B, L),
        raw log-mel (B, T, M), spk (B, spk_dim). Each row keeps n = min(tokens, frames // ratio) tokens
        and ratio x n frames; returns the `FlowPrediction` over those frames (B, ratio x max n, M)."""
        c = self.config
        lengths = torch.minimum(token_lengths.to(mel.device), torch.div(mel_lengths.to(mel.device), c.ratio,
                                                                        rounding_mode="floor")).long()
        width = c.ratio * int(lengths.max())
        frames = c.ratio * lengths
        draws = draws if draws is not None else draw_step(c, frames, width, generator)
        streaming = draws.mask.mode != "full"
        mu, _ = self.encode(tokens[:, : int(lengths.max())], lengths, streaming)  # (B, M, W)
        padding = lengths_to_mask(frames, width)  # (B, W)
        x1 = mel[:, :width].float().transpose(1, 2) * padding[:, None]  # (B, M, W)
        keep = draws.keep.to(mel.device)
        in_prompt = lengths_to_mask(draws.prompt_lengths.to(mel.device) * keep, width)  # dropped rows: no prompt
        kept = keep.to(x1.dtype)
        x0, t = draws.noise.to(x1).transpose(1, 2), draws.t.to(x1)
        x_t = (1 - (1 - c.sigma_min) * t[:, None, None]) * x0 + t[:, None, None] * x1
        velocity = self.estimator(x_t, padding[:, None].to(x1.dtype), mu * kept[:, None, None], t,
                                  self.speaker(spk.to(x1.dtype)) * kept[:, None],
                                  x1 * in_prompt[:, None] * kept[:, None, None], streaming)
        target = x1 - (1 - c.sigma_min) * x0
        return FlowPrediction(velocity.transpose(1, 2), target.transpose(1, 2), padding & ~in_prompt)


# ---- CosyVoice 2's flow.pt --------------------------------------------------------------------

_LAYER = r"encoder\.(encoders|up_encoders)\.(\d+)\."
_ATTENTION = {"linear_q": "q", "linear_k": "k", "linear_v": "v", "linear_out": "out", "linear_pos": "pos"}
_STAGE = r"decoder\.estimator\.(down_blocks\.0|mid_blocks\.\d+|up_blocks\.0)\."


def _layer(m: re.Match) -> str:
    """Our encoder layer of a match of _LAYER."""
    return f"encoder.{'layers' if m[1] == 'encoders' else 'up_layers'}.{m[2]}"


def _stage(m: re.Match) -> str:
    """Our estimator stage of a match of _STAGE."""
    if m[1].startswith("mid_blocks"):
        return "estimator.mid." + m[1].split(".")[1]
    return "estimator." + ("down" if m[1].startswith("down") else "up")


_RENAMES = (  # theirs -> ours
    (r"input_embedding\.weight", lambda m: "token_embedding.weight"),
    (r"spk_embed_affine_layer\.(weight|bias)", lambda m: f"spk_proj.{m[1]}"),
    (r"encoder_proj\.(weight|bias)", lambda m: m[0]),
    (r"encoder\.(embed|up_embed)\.out\.([01])\.(weight|bias)", lambda m: (
        f"encoder.{'in' if m[1] == 'embed' else 'up'}_{'proj' if m[2] == '0' else 'norm'}.{m[3]}")),
    (r"encoder\.pre_lookahead_layer\.(conv[12])\.(weight|bias)", lambda m: f"encoder.lookahead.{m[1]}.{m[2]}"),
    (r"encoder\.up_layer\.conv\.(weight|bias)", lambda m: f"encoder.upsample.{m[1]}"),
    (r"encoder\.after_norm\.(weight|bias)", lambda m: f"encoder.out_norm.{m[1]}"),
    (_LAYER + r"self_attn\.(linear_[qkvo]\w*|linear_pos)\.(weight|bias)",
     lambda m: f"{_layer(m)}.attn.{_ATTENTION[m[3]]}.{m[4]}" if m[3] in _ATTENTION else None),
    (_LAYER + r"self_attn\.(pos_bias_[uv])", lambda m: f"{_layer(m)}.attn.{m[3]}"),
    (_LAYER + r"(norm_mha|norm_ff)\.(weight|bias)",
     lambda m: f"{_layer(m)}.{'attn_norm' if m[3] == 'norm_mha' else 'ff_norm'}.{m[4]}"),
    (_LAYER + r"feed_forward\.w_([12])\.(weight|bias)", lambda m: f"{_layer(m)}.ff.{0 if m[3] == '1' else 3}.{m[4]}"),
    (r"decoder\.estimator\.time_mlp\.linear_([12])\.(weight|bias)",
     lambda m: f"estimator.time_mlp.{0 if m[1] == '1' else 2}.{m[2]}"),
    (_STAGE + r"0\.mlp\.1\.(weight|bias)", lambda m: f"{_stage(m)}.res.time_proj.{m[2]}"),
    (_STAGE + r"0\.(block[12])\.block\.([02])\.(weight|bias)", lambda m: (
        f"{_stage(m)}.res.{m[2]}.{'conv' if m[3] == '0' else 'norm'}.{m[4]}")),
    (_STAGE + r"0\.res_conv\.(weight|bias)", lambda m: f"{_stage(m)}.res.skip.{m[2]}"),
    (_STAGE + r"1\.(\d+)\.(norm1|norm3)\.(weight|bias)", lambda m: (
        f"{_stage(m)}.blocks.{m[2]}.{'attn_norm' if m[3] == 'norm1' else 'ff_norm'}.{m[4]}")),
    (_STAGE + r"1\.(\d+)\.attn1\.to_([qkv])\.weight", lambda m: f"{_stage(m)}.blocks.{m[2]}.{m[3]}.weight"),
    (_STAGE + r"1\.(\d+)\.attn1\.to_out\.0\.(weight|bias)", lambda m: f"{_stage(m)}.blocks.{m[2]}.out.{m[3]}"),
    (_STAGE + r"1\.(\d+)\.ff\.net\.(0\.proj|2)\.(weight|bias)", lambda m: (
        f"{_stage(m)}.blocks.{m[2]}.{'ff_up' if m[3] == '0.proj' else 'ff_down'}.{m[4]}")),
    (r"decoder\.estimator\.(down_blocks\.0|up_blocks\.0)\.2\.(weight|bias)", lambda m: f"{_stage(m)}.post.{m[2]}"),
    (r"decoder\.estimator\.final_block\.block\.([02])\.(weight|bias)",
     lambda m: f"estimator.final.{'conv' if m[1] == '0' else 'norm'}.{m[2]}"),
    (r"decoder\.estimator\.final_proj\.(weight|bias)", lambda m: f"estimator.out_proj.{m[1]}"),
)
flow_key = renamer(_RENAMES)  # CosyVoice's CausalMaskedDiffWithXvec's keys -> ours; None: no place here


def convert_flow_state(state: dict[str, torch.Tensor], config: CosyVoice2FlowConfig | None = None,
                       what: str = "flow state dict") -> CosyVoice2Flow:
    """A CosyVoice2Flow of `config` (default: the release's) holding CosyVoice's flow weights `state`."""
    from ttsframe.inference.state_map import map_state

    flow = CosyVoice2Flow(config or cosyvoice2_release())
    flow.load_state_dict(map_state(state, flow_key, flow.state_dict(), what), strict=True)
    return flow.eval()


def load_flow_checkpoint(path: str | Path, config: CosyVoice2FlowConfig | None = None) -> CosyVoice2Flow:
    """The flow in CosyVoice 2's `flow.pt` (a torch state dict; nothing in it is executed)."""
    from ttsframe.inference.state_map import read_torch_state

    return convert_flow_state(read_torch_state(path, "CosyVoice 2 flow.pt"), config, str(path))
