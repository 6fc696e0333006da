"""DAC, the Descript Audio Codec (Kumar et al., 2023), through the `dac` package.

Weights, first found wins: `checkpoint:` (a DAC weights file: {"state_dict", "metadata":
{"kwargs"}}, as published and as `DAC.save(path, package=False)` writes), the cache where
`dac.utils.download` puts them (~/.cache/descript/dac/weights_<type>_<bitrate>_<tag>.pth), a
download into that cache. `pretrained: false` builds a random model of the `random_init` size
(tests only). DAC is not causal: padding a batch may change the last few frames of a shorter item
(within the receptive field of its end). Decoding returns T * hop samples (DAC's transposed convs
with odd strides give a few fewer: the tail is zero-padded).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ttsframe.codecs.base import resolve_device
from ttsframe.errors import ConfigError, UserError

MODEL_TYPES = ("44khz", "24khz", "16khz")


@dataclass
class RandomInit:
    """Architecture of a random-weight DAC (`pretrained: false`); the default runs in milliseconds."""

    sample_rate: int = 24000
    encoder_dim: int = 8
    encoder_rates: list[int] = field(default_factory=lambda: [2, 4, 5])  # hop = product = 40
    decoder_dim: int = 32
    decoder_rates: list[int] = field(default_factory=lambda: [5, 4, 2])
    n_codebooks: int = 4
    codebook_size: int = 64
    codebook_dim: int = 8


@dataclass
class Config:
    name: str = "dac"
    model_type: str = "24khz"  # 44khz | 24khz | 16khz (which published weights)
    model_bitrate: str = "8kbps"  # 8kbps | 16kbps (16kbps: 44khz only)
    n_codebooks: int | None = None  # use the first K codebooks (<= the model's); None: all
    checkpoint: str | None = None  # a DAC weights .pth; None: dac's cache (~/.cache/descript/dac)
    pretrained: bool = True  # False: random init of `random_init` size (tests only)
    random_init: RandomInit = field(default_factory=RandomInit)
    device: str = "auto"  # auto | cpu | cuda
    batch_seconds: float = 60.0  # seconds of audio per encode batch; lower it on out-of-memory


def cache_path(model_type: str, model_bitrate: str) -> tuple[Path, str]:
    """(file `dac.utils.download` reads and writes, URL it downloads from)."""
    from dac import utils

    tag = utils.__MODEL_LATEST_TAGS__.get((model_type, model_bitrate))
    url = utils.__MODEL_URLS__.get((model_type, tag, model_bitrate))
    if url is None:
        known = ", ".join(f"{t}/{b}" for t, b in utils.__MODEL_LATEST_TAGS__)
        raise ConfigError(f"codec: no published DAC model {model_type}/{model_bitrate}; known: {known}")
    return Path.home() / ".cache" / "descript" / "dac" / f"weights_{model_type}_{model_bitrate}_{tag}.pth", url


def _download(model_type: str, model_bitrate: str) -> None:
    from dac import utils

    utils.download(model_type=model_type, model_bitrate=model_bitrate, tag="latest")


def weights_path(config: Config) -> Path:
    """The weights file to load: `checkpoint`, else dac's cache (downloading into it if possible)."""
    if config.checkpoint:
        path = Path(config.checkpoint).expanduser()
        if not path.is_file():
            raise UserError(f"codec.checkpoint={config.checkpoint}: no such file")
        return path
    if config.model_type not in MODEL_TYPES:
        raise ConfigError(f"codec.model_type={config.model_type!r}; valid: {', '.join(MODEL_TYPES)}")
    path, url = cache_path(config.model_type, config.model_bitrate)
    if not path.is_file():
        try:
            _download(config.model_type, config.model_bitrate)
        except Exception as e:  # ConnectionError, bad status, ...: all mean "no usable file"
            raise UserError(
                f"DAC {config.model_type} weights not found at {path} and the download failed "
                f"({type(e).__name__}: {str(e)[:120]}). On a machine with network, fetch {url} and copy "
                f"it to {path}, or put it anywhere and set codec.checkpoint=/path/to/{path.name}"
            ) from None
    return path


def load_dac(path: Path):
    """A DAC model from a weights file, built from the kwargs stored in it (no pickled code)."""
    import inspect

    import dac

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        kwargs = dict(data["metadata"]["kwargs"])
        state = data["state_dict"]
    except Exception as e:
        raise UserError(f"{path}: not a DAC weights file with state_dict and metadata.kwargs "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    accepted = inspect.signature(dac.DAC).parameters
    model = dac.DAC(**{k: v for k, v in kwargs.items() if k in accepted})
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit the DAC described in it ({str(e).splitlines()[0][:200]})") from None
    return model


def build_model(config: Config):
    """An eval-mode `dac.DAC` with the configured weights."""
    import dac

    if config.pretrained:
        return load_dac(weights_path(config)).eval()
    return dac.DAC(**asdict(config.random_init)).eval()


class DACCodec:
    """wav (B, T_wav) at the model's rate <-> codes (B, K, ceil(T_wav / hop))."""

    needs_fit = False

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.device = resolve_device(self.config.device)
        self.model = build_model(self.config).to(self.device)
        self.sample_rate = int(self.model.sample_rate)
        self.hop_length = int(self.model.hop_length)
        self.frame_rate = self.sample_rate / self.hop_length
        self.codebook_size = int(self.model.codebook_size)
        available = int(self.model.n_codebooks)
        self.n_codebooks = available if self.config.n_codebooks is None else int(self.config.n_codebooks)
        if not 1 <= self.n_codebooks <= available:
            raise ConfigError(f"codec.n_codebooks={self.config.n_codebooks}: this DAC has {available} codebooks")

    def frames_for(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav) -> codes (B, K, frames_for(T_wav)) long; item i valid up to frames_for(lengths[i])."""
        x = wav.to(self.device).float().unsqueeze(1)  # (B, 1, T_wav)
        x = F.pad(x, (0, self.frames_for(x.shape[-1]) * self.hop_length - x.shape[-1]))
        _, codes, *_ = self.model.encode(x, n_quantizers=self.n_codebooks)  # (B, K, T)
        return codes[:, : self.n_codebooks]

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K', T), K' <= K -> wav (B, T * hop)."""
        z, _, _ = self.model.quantizer.from_codes(codes.to(self.device).long())  # (B, D, T)
        wav = self.model.decode(z)[:, 0]  # (B, ~T * hop)
        n = codes.shape[-1] * self.hop_length
        return F.pad(wav, (0, max(0, n - wav.shape[-1])))[:, :n]

    def describe(self) -> dict:
        return {
            "name": "dac", "model_type": self.config.model_type if self.config.pretrained else "random",
            "sample_rate": self.sample_rate, "frame_rate": self.frame_rate, "n_codebooks": self.n_codebooks,
            "codebook_size": self.codebook_size, "pretrained": self.config.pretrained,
        }
