"""Audio samples of a model in training: at each validation, render a few dev utterances.

The task supplies `sample_features(batch, max_items) -> [(name, feature)]` (codes (K', T) or a
log-mel (T, n_mels)); this callback turns them into audio with the recipe's codec or vocoder,
writes `<stage dir>/samples/step<N>/<name>.{wav,png}` and sends audio and spectrogram images to
the logger (wandb or TensorBoard; the CSV logger keeps the files only). So a user hears from the
first validation whether the model is learning to speak, not only that its loss falls.
`mel_continuations` is what the mel families' tasks (MELLE, DiTAR) render: dev utterances
continued from their first third.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ttsframe.codecs.mel import MelConfig, MelSpectrogram
from ttsframe.data.audio import save_audio
from ttsframe.training.spectrogram_image import save_png, spectrogram_rgb

Render = Callable[[torch.Tensor], np.ndarray]  # a feature -> wav (T,)
# (tokens (1, L), token_lengths (1,), prompt log-mel (1, Tp, M), prompt_lengths (1,), max_frames (1,))
# -> [continuation log-mel (T, M)]: a mel family's generation
ContinueMel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], list[torch.Tensor]]
PROMPT_SHARE = 1 / 3  # of a dev utterance: the acoustic prompt of its rendered continuation


class AudioSamples(Callback):
    """Renders `max_items` utterances of the first validation batch after every validation."""

    def __init__(self, render: Render, sample_rate: int, out_dir: Path, max_items: int = 2):
        self.render, self.sample_rate, self.out_dir, self.max_items = render, sample_rate, Path(out_dir), max_items
        self.batch = None
        self.mel = MelSpectrogram(MelConfig(sample_rate=sample_rate))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and self.batch is None:
            self.batch = batch.to("cpu")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self.batch is None:
            return
        step_dir = self.out_dir / f"step{trainer.global_step:07d}"
        with torch.no_grad():
            items = pl_module.sample_features(self.batch.to(pl_module.device), self.max_items)
        for name, feature in items:
            try:
                wav = self.render(feature.detach().float().cpu())
            except Exception as e:  # a codec that cannot decode partial codes: say so, keep training
                print(f"audio samples: cannot render {name}: {e}")
                continue
            rgb = spectrogram_rgb(self.mel(torch.from_numpy(wav)[None])[0].numpy())
            save_audio(str(step_dir / f"{name}.wav"), wav, self.sample_rate)
            save_png(step_dir / f"{name}.png", rgb)
            log_to(trainer.logger, name, wav, rgb, self.sample_rate, trainer.global_step)


def log_to(logger, name: str, wav: np.ndarray, rgb: np.ndarray, sample_rate: int, step: int) -> None:
    """Sends one sample to wandb or TensorBoard; other loggers keep only the files on disk."""
    kind = type(logger).__name__
    if kind == "WandbLogger":
        import wandb

        logger.experiment.log({f"samples/{name}": wandb.Audio(wav, sample_rate=sample_rate),
                               f"spectrograms/{name}": wandb.Image(rgb)}, commit=False)
    elif kind == "TensorBoardLogger":
        logger.experiment.add_audio(f"samples/{name}", torch.from_numpy(wav)[None], step, sample_rate)
        logger.experiment.add_image(f"spectrograms/{name}", rgb, step, dataformats="HWC")


def mel_continuations(batch, max_items: int, generate: ContinueMel, name: str) -> list[tuple[str, torch.Tensor]]:
    """What a mel family's task renders (its `sample_features`): each of the first `max_items` dev
    utterances continued by `generate` from its first third, given its whole transcript.

    Returns:
        [(name, log-mel (T, M))]: per utterance `<id>_truth`, then `<id>_<name>` (prompt + continuation).
    """
    items = []
    for i in range(min(max_items, len(batch.ids))):
        length = int(batch.frame_lengths[i])
        prompt = max(1, int(length * PROMPT_SHARE))
        mel = batch.mel[i, :length]  # (T, M)
        tokens = batch.tokens[i : i + 1, : int(batch.token_lengths[i])]
        [generated] = generate(tokens, batch.token_lengths[i : i + 1], mel[None, :prompt],
                               torch.tensor([prompt], device=tokens.device), torch.tensor([2 * (length - prompt) + 10]))
        items.append((f"{batch.ids[i]}_truth", mel))
        items.append((f"{batch.ids[i]}_{name}", torch.cat([mel[:prompt], generated.to(mel.device)])))
    return items


def codec_renderer(codec) -> Render:
    """Codes (K', T) with K' <= K, or a log-mel (T, n_mels), -> wav through the codec's decoder."""
    def render(feature: torch.Tensor) -> np.ndarray:
        if codec.n_codebooks > 0:
            wav = codec.decode(feature.long()[None].to(getattr(codec, "device", "cpu")))
        else:
            wav = codec.decode(feature.T[None].to(getattr(codec, "device", "cpu")))
        return wav[0].float().cpu().numpy()

    return render
