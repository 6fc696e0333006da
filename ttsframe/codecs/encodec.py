"""EnCodec 24 kHz (Défossez et al., 2022) through the `encodec` package: 75 frames/s, 1024 entries
per codebook, 2/4/8/16/32 codebooks at 1.5/3/6/12/24 kbps.

Weights, first found wins: `checkpoint:` (the published state dict, encodec_24khz-d7cc33bc.th),
the torch hub cache where `EncodecModel.encodec_model_24khz()` downloads to
(`<torch.hub.get_dir()>/checkpoints/`), a download into that cache. `pretrained: false` gives
random weights (tests only). The model is causal: padding a batch changes no frame of a shorter
item except its last one (the partial frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ttsframe.codecs.base import resolve_device
from ttsframe.errors import ConfigError, UserError

CHECKPOINT_NAME = "encodec_24khz-d7cc33bc.th"
CHECKPOINT_URL = f"https://dl.fbaipublicfiles.com/encodec/v0/{CHECKPOINT_NAME}"
BANDWIDTHS = {1.5: 2, 3.0: 4, 6.0: 8, 12.0: 16, 24.0: 32}  # kbps -> codebooks
SAMPLE_RATE, HOP_LENGTH, CODEBOOK_SIZE = 24000, 320, 1024


@dataclass
class Config:
    name: str = "encodec"
    bandwidth: float = 6.0  # kbps: 1.5 | 3 | 6 | 12 | 24 -> 2 | 4 | 8 | 16 | 32 codebooks
    checkpoint: str | None = None  # path to encodec_24khz-d7cc33bc.th; None: torch hub cache
    pretrained: bool = True  # False: random init (tests only)
    device: str = "auto"  # auto | cpu | cuda
    batch_seconds: float = 120.0  # seconds of audio per encode batch; lower it on out-of-memory


def cache_path() -> Path:
    """Where `EncodecModel.encodec_model_24khz()` keeps the weights (torch hub cache)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT_NAME


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dest), hash_prefix=CHECKPOINT_NAME.split("-")[1].split(".")[0])


def weights_path(checkpoint: str | None) -> Path:
    """The state-dict file to load: `checkpoint`, else the cache (downloading into it if possible)."""
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise UserError(f"codec.checkpoint={checkpoint}: no such file (expected {CHECKPOINT_NAME} "
                            f"from {CHECKPOINT_URL})")
        return path
    path = cache_path()
    if not path.is_file():
        try:
            _download(CHECKPOINT_URL, path)
        except Exception as e:  # URLError, timeouts, hash mismatch: all mean "no usable file"
            raise UserError(
                f"EnCodec 24 kHz weights not found at {path} and the download failed "
                f"({type(e).__name__}: {str(e)[:120]}). On a machine with network, fetch {CHECKPOINT_URL} "
                f"and copy it to {path}, or put it anywhere and set codec.checkpoint=/path/to/{CHECKPOINT_NAME}"
            ) from None
    return path


def build_model(config: Config):
    """An eval-mode `encodec.EncodecModel` (24 kHz) with the configured weights and bandwidth."""
    from encodec import EncodecModel

    if float(config.bandwidth) not in BANDWIDTHS:
        raise ConfigError(f"codec.bandwidth={config.bandwidth}: EnCodec 24 kHz supports "
                          f"{', '.join(str(b) for b in BANDWIDTHS)} kbps")
    state, path = None, None
    if config.pretrained:
        path = weights_path(config.checkpoint)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(f"{path}: unreadable as a torch state dict ({str(e).splitlines()[0][:160]})") from None
    model = EncodecModel.encodec_model_24khz(pretrained=False)
    if state is not None:
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:
            raise UserError(f"{path}: not an EnCodec 24 kHz state dict ({str(e).splitlines()[0][:200]})") from None
    model.set_target_bandwidth(float(config.bandwidth))
    return model.eval()


class EncodecCodec:
    """wav (B, T_wav) at 24 kHz <-> codes (B, K, ceil(T_wav / 320))."""

    needs_fit = False
    sample_rate = SAMPLE_RATE
    hop_length = HOP_LENGTH
    frame_rate = SAMPLE_RATE / HOP_LENGTH  # 75.0
    codebook_size = CODEBOOK_SIZE

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.device = resolve_device(self.config.device)
        self.model = build_model(self.config).to(self.device)
        self.n_codebooks = BANDWIDTHS[float(self.config.bandwidth)]

    def frames_for(self, num_samples: int) -> int:
        return math.ceil(num_samples / HOP_LENGTH)

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) -> codes (B, K, frames_for(T_wav)) long; item i valid up to frames_for(lengths[i])."""
        frames = self.model.encode(wav.to(self.device).float().unsqueeze(1))  # [(codes (B, K, T), None)]
        return torch.cat([codes for codes, _ in frames], dim=-1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K', T), K' <= K -> wav (B, T * 320)."""
        wav = self.model.decode([(codes.to(self.device).long(), None)])  # (B, 1, T * 320)
        return wav[:, 0, : codes.shape[-1] * HOP_LENGTH]

    def describe(self) -> dict:
        return {
            "name": "encodec", "model": "encodec_24khz", "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate, "n_codebooks": self.n_codebooks,
            "codebook_size": self.codebook_size, "bandwidth": float(self.config.bandwidth),
            "pretrained": self.config.pretrained,
        }
