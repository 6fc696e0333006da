"""`S3AsrTokenizer`: a trained S3AsrModel and its front end as a `SpeechTokenizer`."""

from __future__ import annotations

import torch

from ttsframe.tokenizers.s3_asr.features import AsrFeatureConfig, LogMel
from ttsframe.tokenizers.s3_asr.model import S3AsrModel


class S3AsrTokenizer:
    """wav (B, T_wav) at 16 kHz -> token ids (B, T_tok) at 100 / subsample Hz (50 or 25)."""

    def __init__(self, model: S3AsrModel, features: AsrFeatureConfig | None = None):
        self.model = model.eval()
        self.features = LogMel(features).to(next(model.parameters()).device)
        self.sample_rate = self.features.cfg.sample_rate
        self.frame_rate = self.features.cfg.frame_rate / model.config.subsample
        self.vocab_size = model.config.codebook_size

    folder: str | None = None  # where it was loaded from (`io.load_tokenizer`)
    checksum: str | None = None  # sha256 of its weights file

    def describe(self) -> dict:
        """What the shards' index and a release keep of it (enough to load it again and check it)."""
        return {"name": "s3_asr", "frame_rate": self.frame_rate, "vocab_size": self.vocab_size,
                "folder": self.folder, "sha256": self.checksum}

    def frames_for(self, num_samples: int) -> int:
        return int(self.model.output_length(self.features.cfg.frames_for(num_samples)))

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav), lengths (B,) samples -> ids (B, frames_for(T_wav)); row i valid for
        its first frames_for(lengths[i]) ids."""
        device = self.features.window.device
        wav = wav.to(device)
        lengths = None if lengths is None else torch.as_tensor(lengths, dtype=torch.long, device=device)
        mel = self.features(wav, lengths)  # (B, T, n_mels)
        if mel.shape[1] == 0:  # under one hop of audio: no frames, no tokens
            return torch.zeros(wav.shape[0], 0, dtype=torch.long, device=device)
        mel_lengths = None if lengths is None else lengths // self.features.cfg.hop_length
        return self.model.tokenize(mel, mel_lengths)
