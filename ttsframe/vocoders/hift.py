"""HiFT, CosyVoice 2's vocoder (HiFTNet, Li et al., 2023): a neural source filter + an iSTFT head.

    mel (B, M, T) --F0Predictor--> f0 (B, T) --repeat x hop--> (B, L)        L = T * hop
      --SineSource--> harmonic excitation (B, 1, L) --STFT--> (B, 2F, L / istft_hop + 1)
    mel --conv_pre--> [lrelu -> up_i -> (+ source_down_i -> source_block_i) -> mean of Snake
      resblocks] per stage --> lrelu(0.01) -> conv_post -> (log-magnitude, phase) --iSTFT--> wav

The sine source draws two random things: the initial phase of each overtone and additive
Gaussian noise. `HiFTGenerator.forward` takes them as arguments (`phase`, `noise`) or draws them
from a `torch.Generator`, so a synthesis is reproducible and the equivalence tests can feed the
draws the reference made. The sine phase is integrated at the frame rate and interpolated back to
the sample rate, as CosyVoice 2 does at 24 kHz (its SineGen2).

`load_hift_checkpoint` reads CosyVoice 2's `hift.pt` (weight norm folded, keys renamed, every key
checked); `HiFTVocoder` is the `Vocoder` registered as `hift`. The modules are inference-only
(plain convs, no weight norm): training a HiFT is not part of ttsframe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ttsframe.codecs.mel import MelConfig, check_mel_compatible
from ttsframe.errors import ConfigError
from ttsframe.inference.state_map import renamer
from ttsframe.vocoders.hifigan import check_upsample_kernels


@dataclass
class HiFTConfig:
    """Generator sizes; the defaults are the released CosyVoice2-0.5B `hift.pt` (20.8 M parameters)."""

    n_mels: int = 80
    sample_rate: int = 24000
    channels: int = 512  # after conv_pre; halved by every upsampling stage
    f0_channels: int = 512  # width of the F0 predictor's convs
    n_harmonics: int = 8  # overtones above f0 in the sine source
    sine_amp: float = 0.1
    noise_std: float = 0.003  # additive noise in voiced samples (unvoiced: sine_amp / 3)
    voiced_threshold: float = 10.0  # Hz; f0 above it is voiced
    upsample_rates: list[int] = field(default_factory=lambda: [8, 5, 3])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 11, 7])
    istft_n_fft: int = 16
    istft_hop: int = 4
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilations: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    source_kernel_sizes: list[int] = field(default_factory=lambda: [7, 7, 11])  # one per upsampling stage
    source_dilations: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates) * self.istft_hop

    def check(self, mel: MelConfig | None = None) -> None:
        """ConfigError on sizes the architecture cannot build, or on a mel config it does not fit."""
        stages = len(self.upsample_rates)
        if not (len(self.upsample_kernel_sizes) == len(self.source_kernel_sizes) == len(self.source_dilations)
                == stages) or len(self.resblock_kernel_sizes) != len(self.resblock_dilations):
            raise ConfigError("hift: upsample_rates, upsample_kernel_sizes, source_kernel_sizes and "
                              "source_dilations need one entry per stage; resblock kernels one dilation list each")
        check_upsample_kernels("hift", self.upsample_rates, self.upsample_kernel_sizes)
        if mel is not None and (mel.hop_length != self.hop_length or mel.n_mels != self.n_mels
                                or mel.sample_rate != self.sample_rate):
            raise ConfigError(f"hift: the generator takes {self.n_mels} mels at {self.sample_rate} Hz and makes "
                              f"{self.hop_length} samples a frame; the mel config has n_mels {mel.n_mels}, "
                              f"sample_rate {mel.sample_rate}, hop_length {mel.hop_length}")


def cosyvoice2() -> HiFTConfig:
    """The released CosyVoice2-0.5B vocoder: 24 kHz, hop 480 (8 x 5 x 3 x iSTFT hop 4)."""
    return HiFTConfig()


def reference_config(kwargs: dict) -> HiFTConfig:
    """Our HiFTConfig for the constructor arguments of CosyVoice's HiFTGenerator (the `hift:` entry of
    its cosyvoice2.yaml)."""
    return HiFTConfig(n_mels=kwargs["in_channels"], sample_rate=kwargs["sampling_rate"],
                      channels=kwargs["base_channels"],
                      f0_channels=kwargs.get("f0_channels", (kwargs.get("f0_predictor") or {}).get("cond_channels", 512)),
                      n_harmonics=kwargs["nb_harmonics"], sine_amp=kwargs["nsf_alpha"],
                      noise_std=kwargs["nsf_sigma"], voiced_threshold=kwargs["nsf_voiced_threshold"],
                      upsample_rates=kwargs["upsample_rates"], upsample_kernel_sizes=kwargs["upsample_kernel_sizes"],
                      istft_n_fft=kwargs["istft_params"]["n_fft"], istft_hop=kwargs["istft_params"]["hop_len"],
                      resblock_kernel_sizes=kwargs["resblock_kernel_sizes"],
                      resblock_dilations=kwargs["resblock_dilation_sizes"],
                      source_kernel_sizes=kwargs["source_resblock_kernel_sizes"],
                      source_dilations=kwargs["source_resblock_dilation_sizes"],
                      lrelu_slope=kwargs["lrelu_slope"], audio_limit=kwargs["audio_limit"])


def tiny() -> HiFTConfig:
    """Three stages like the release, ~53k parameters, hop 96; for tests."""
    return HiFTConfig(channels=32, f0_channels=16, upsample_rates=[4, 3, 2], upsample_kernel_sizes=[8, 7, 4],
                      resblock_kernel_sizes=[3, 5], resblock_dilations=[[1, 3], [1, 3]],
                      source_kernel_sizes=[5, 5, 3], source_dilations=[[1, 3], [1, 3], [1]])


PRESETS = {"cosyvoice2": cosyvoice2, "tiny": tiny}


def cosyvoice2_mel() -> MelConfig:
    """The log-mel CosyVoice 2's flow makes and its HiFT reads (Matcha-TTS's features at 24 kHz)."""
    return MelConfig(sample_rate=24000, n_fft=1920, hop_length=480, win_length=1920, n_mels=80, fmin=0.0,
                     fmax=8000.0, log_floor=1e-5, center=False)


class SnakeLayer(nn.Module):
    """x + conv2(snake(conv1(snake(x)))), conv1 dilated; snake(x) = x + sin^2(a x) / a per channel."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.alpha1 = nn.Parameter(torch.ones(channels))
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.alpha2 = nn.Parameter(torch.ones(channels))
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)

    @staticmethod
    def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:  # (B, C, L), (C,)
        alpha = alpha[None, :, None]
        return x + torch.sin(x * alpha).pow(2) / (alpha + 1e-9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, L)
        return x + self.conv2(self.snake(self.conv1(self.snake(x, self.alpha1)), self.alpha2))


class SnakeResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(SnakeLayer(channels, kernel, d) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class F0Predictor(nn.Module):
    """mel (B, M, T) -> f0 (B, T) >= 0 in Hz: five conv(3) + ELU, then a linear read-out."""

    def __init__(self, n_mels: int, channels: int, n_convs: int = 5):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(n_mels if i == 0 else channels, channels, 3, padding=1)
                                   for i in range(n_convs))
        self.proj = nn.Linear(channels, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel
        for conv in self.convs:
            x = F.elu(conv(x))
        return self.proj(x.transpose(1, 2)).squeeze(-1).abs()


class SineSource(nn.Module):
    """f0 (B, L) at the sample rate -> excitation (B, 1, L): sines at f0 x 1..H+1 where voiced,
    Gaussian noise everywhere, merged by a linear layer and tanh."""

    def __init__(self, config: HiFTConfig):
        super().__init__()
        self.config = config
        self.merge = nn.Linear(config.n_harmonics + 1, 1)

    def forward(self, f0: torch.Tensor, phase: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """f0 (B, L); phase (B, H+1) initial phase in cycles (the fundamental's is taken as 0);
        noise (B, L, H+1) standard normal."""
        c = self.config
        scale = c.hop_length
        harmonics = torch.arange(1, c.n_harmonics + 2, device=f0.device, dtype=f0.dtype)
        cycles = (f0[..., None] * harmonics / c.sample_rate) % 1  # (B, L, H+1) cycles per sample
        cycles[:, 0] = cycles[:, 0] + torch.cat([torch.zeros_like(phase[:, :1]), phase[:, 1:]], dim=1)
        # integrate at the frame rate, then interpolate the phase back to the sample rate
        per_frame = F.interpolate(cycles.transpose(1, 2), scale_factor=1 / scale, mode="linear")  # (B, H+1, T)
        angle = torch.cumsum(per_frame, dim=2) * 2 * math.pi
        angle = F.interpolate(angle * scale, scale_factor=scale, mode="linear").transpose(1, 2)  # (B, L, H+1)
        voiced = (f0 > c.voiced_threshold).to(f0.dtype)[..., None]  # (B, L, 1)
        noise_amp = voiced * c.noise_std + (1 - voiced) * c.sine_amp / 3
        excitation = c.sine_amp * torch.sin(angle) * voiced + noise_amp * noise  # (B, L, H+1)
        return torch.tanh(self.merge(excitation)).transpose(1, 2)  # (B, 1, L)


class HiFTGenerator(nn.Module):
    """mel (B, n_mels, T) -> wav (B, T * hop_length) in [-audio_limit, audio_limit]."""

    def __init__(self, config: HiFTConfig | None = None):
        super().__init__()
        self.config = c = config or HiFTConfig()
        c.check()
        self.f0_predictor = F0Predictor(c.n_mels, c.f0_channels)
        self.source = SineSource(c)
        self.conv_pre = nn.Conv1d(c.n_mels, c.channels, 7, padding=3)
        bins = c.istft_n_fft + 2  # real and imaginary parts of n_fft / 2 + 1 bins
        self.ups, self.source_downs, self.source_resblocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)):
            width = c.channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(2 * width, width, kernel, rate, padding=(kernel - rate) // 2))
            # the source's STFT frames -> this stage's rate: stride = product of the later stages' rates
            stride = math.prod(c.upsample_rates[i + 1:])
            self.source_downs.append(nn.Conv1d(bins, width, 1) if stride == 1 else
                                     nn.Conv1d(bins, width, 2 * stride, stride, padding=stride // 2))
            self.source_resblocks.append(SnakeResBlock(width, c.source_kernel_sizes[i], c.source_dilations[i]))
        self.resblocks = nn.ModuleList(
            SnakeResBlock(c.channels // 2 ** (i + 1), k, d)
            for i in range(len(c.upsample_rates)) for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilations))
        self.conv_post = nn.Conv1d(c.channels // 2 ** len(c.upsample_rates), bins, 7, padding=3)
        self.register_buffer("window", torch.hann_window(c.istft_n_fft), persistent=False)

    def draw_source_noise(self, batch: int, frames: int, generator: torch.Generator | None = None,
                          device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(phase (B, H+1) uniform in [0, 1), noise (B, T * hop, H+1) standard normal)."""
        device = device or self.window.device
        dim = self.config.n_harmonics + 1
        phase = torch.rand(batch, dim, generator=generator, device=device)
        noise = torch.randn(batch, frames * self.config.hop_length, dim, generator=generator, device=device)
        return phase, noise

    def excitation(self, mel: torch.Tensor, phase: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(f0 (B, T), source (B, 1, T * hop)); phase / noise drawn from `generator` when None."""
        f0 = self.f0_predictor(mel)  # (B, T)
        if phase is None or noise is None:
            drawn = self.draw_source_noise(mel.shape[0], mel.shape[2], generator, mel.device)
            phase, noise = phase if phase is not None else drawn[0], noise if noise is not None else drawn[1]
        f0_samples = f0.repeat_interleave(self.config.hop_length, dim=1)  # (B, L)
        return f0, self.source(f0_samples, phase.to(mel.dtype), noise.to(mel.dtype))

    def decode(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """mel (B, M, T) and the excitation (B, 1, T * hop) -> wav (B, T * hop)."""
        c = self.config
        spec = torch.stft(source.squeeze(1), c.istft_n_fft, c.istft_hop, c.istft_n_fft, window=self.window,
                          return_complex=True)  # (B, F, L / istft_hop + 1)
        s = torch.cat([spec.real, spec.imag], dim=1)  # (B, 2F, frames)
        x = self.conv_pre(mel)  # (B, C, T)
        n_kernels = len(c.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, c.lrelu_slope))  # (B, C / 2^(i+1), T * prod(rates[:i+1]))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")  # one more frame: the STFT's L / istft_hop + 1
            x = x + self.source_resblocks[i](self.source_downs[i](s))
            x = sum(block(x) for block in self.resblocks[i * n_kernels:(i + 1) * n_kernels]) / n_kernels
        x = self.conv_post(F.leaky_relu(x))  # (B, 2F, frames), slope 0.01 here
        bins = c.istft_n_fft // 2 + 1
        magnitude = torch.exp(x[:, :bins]).clamp(max=1e2)
        phase = torch.sin(x[:, bins:])
        wav = torch.istft(torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase)),
                          c.istft_n_fft, c.istft_hop, c.istft_n_fft, window=self.window)  # (B, L)
        return wav.clamp(-c.audio_limit, c.audio_limit)

    def forward(self, mel: torch.Tensor, phase: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """mel (B, M, T) -> wav (B, T * hop); `phase`, `noise` as in `SineSource.forward`."""
        _, source = self.excitation(mel, phase, noise, generator)
        return self.decode(mel, source)


# ---- CosyVoice 2's hift.pt --------------------------------------------------------------------

_RENAMES = (  # theirs -> ours, applied to the key after weight norm is folded
    (r"f0_predictor\.condnet\.(\d+)\.(weight|bias)", lambda m: (
        f"f0_predictor.convs.{int(m[1]) // 2}.{m[2]}" if int(m[1]) % 2 == 0 else None)),
    (r"f0_predictor\.classifier\.(weight|bias)", lambda m: f"f0_predictor.proj.{m[1]}"),
    (r"m_source\.l_linear\.(weight|bias)", lambda m: f"source.merge.{m[1]}"),
    (r"(resblocks|source_resblocks)\.(\d+)\.convs([12])\.(\d+)\.(weight|bias)",
     lambda m: f"{m[1]}.{m[2]}.layers.{m[4]}.conv{m[3]}.{m[5]}"),
    (r"(resblocks|source_resblocks)\.(\d+)\.activations([12])\.(\d+)\.alpha",
     lambda m: f"{m[1]}.{m[2]}.layers.{m[4]}.alpha{m[3]}"),
    (r"(conv_pre|conv_post|ups\.\d+|source_downs\.\d+)\.(weight|bias)", lambda m: m[0]),
)
hift_key = renamer(_RENAMES)  # CosyVoice's HiFTGenerator's keys (weight norm folded) -> ours; None: no place here


def convert_hift_state(state: dict[str, torch.Tensor], config: HiFTConfig | None = None,
                       what: str = "hift state dict") -> HiFTGenerator:
    """A HiFTGenerator of `config` (default: the release's) holding CosyVoice's HiFT weights `state`."""
    from ttsframe.inference.state_map import fold_weight_norm, map_state

    if state and all(key.startswith("generator.") for key in state):  # saved from its GAN wrapper
        state = {key[len("generator."):]: value for key, value in state.items()}
    generator = HiFTGenerator(config or cosyvoice2())
    mapped = map_state(fold_weight_norm(state), hift_key, generator.state_dict(), what)
    generator.load_state_dict(mapped, strict=True)
    return generator.eval().requires_grad_(False)


def load_hift_checkpoint(path: str | Path, config: HiFTConfig | None = None) -> HiFTGenerator:
    """The generator in CosyVoice 2's `hift.pt` (a torch state dict; nothing in it is executed)."""
    from ttsframe.inference.state_map import read_torch_state

    return convert_hift_state(read_torch_state(path, "CosyVoice 2 hift.pt"), config, str(path))


class HiFTVocoder(nn.Module):
    """mel (B, n_mels, T) -> wav (B, T * hop); the `Vocoder` registered as `hift`.

    Args:
        mel_config: the features it will be given; must be CosyVoice 2's (`cosyvoice2_mel()`) for the
            released weights (None: that one).
        checkpoint: CosyVoice 2's `hift.pt`; None with `generator` None: random weights (tests only).
        generator: an already built generator (then `checkpoint` and `preset` are ignored).
        preset: the sizes of `checkpoint` (a name of PRESETS).
        seed: of the source's random phase and noise, drawn anew (from this seed) at every call,
            so the same mel always gives the same waveform.
    """

    def __init__(self, mel_config: MelConfig | None = None, checkpoint: str | Path | None = None,
                 generator: HiFTGenerator | None = None, preset: str = "cosyvoice2", seed: int = 0):
        super().__init__()
        self.mel_config = MelConfig.from_any(mel_config) if mel_config is not None else cosyvoice2_mel()
        if generator is None:
            if preset not in PRESETS:
                raise ConfigError(f"unknown hift preset `{preset}`; presets: {', '.join(PRESETS)}")
            config = PRESETS[preset]()
            config.check(self.mel_config)
            generator = load_hift_checkpoint(checkpoint, config) if checkpoint else HiFTGenerator(config)
        self.source = str(checkpoint) if checkpoint else "in memory"
        generator.config.check(self.mel_config)
        self.sample_rate = self.mel_config.sample_rate
        self.seed = seed
        self.generator = generator.eval().requires_grad_(False)

    def check_features(self, mel_config: MelConfig) -> None:
        check_mel_compatible(self.mel_config, mel_config,
                             f"HiFT vocoder `{self.source}` (first) vs the mel features it is given (second)")

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor, mel_config: MelConfig | None = None) -> torch.Tensor:
        """mel (B, n_mels, T) natural-log magnitudes -> wav (B, T * hop_length) float32."""
        if mel_config is not None:
            self.check_features(mel_config)
        if mel.dim() != 3 or mel.shape[1] != self.mel_config.n_mels:
            raise ValueError(f"expected log-mel (B, {self.mel_config.n_mels}, T), got {tuple(mel.shape)}")
        weight = self.generator.conv_pre.weight
        rng = torch.Generator(device=weight.device).manual_seed(self.seed)
        return self.generator(mel.to(weight.device, weight.dtype), generator=rng).float()
