"""Shard extras of the tokenize stage: speech-tokenizer ids and speaker embeddings per utterance.

Each extra fills one shard member from the utterance's audio (see `ttsframe.pipeline.encode`):
    speech.npy  int16 (S,)  ids of a `SpeechTokenizer` at its frame rate
    spk.npy     float16 (E,) an L2-normalised speaker embedding (Resemblyzer by default)
"""

from __future__ import annotations

import numpy as np
import torch


class SpeechTokens:
    """`speech.npy`: a speech tokenizer's ids for each wav (its `describe()` names it and its weights)."""

    member = "speech.npy"

    def __init__(self, tokenizer):
        if tokenizer.vocab_size > np.iinfo(np.int16).max:
            raise ValueError(f"speech vocabulary {tokenizer.vocab_size} does not fit the int16 shard format")
        self.tokenizer = tokenizer
        self.sample_rate = tokenizer.sample_rate
        self.key = {"speech": tokenizer.describe()}  # what the shard content depends on

    @torch.inference_mode()
    def __call__(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        lengths = torch.tensor([len(w) for w in wavs])
        padded = torch.zeros(len(wavs), int(lengths.max()))
        for i, w in enumerate(wavs):
            padded[i, : len(w)] = torch.from_numpy(w)
        ids = self.tokenizer.encode(padded, lengths)  # (B, S)
        return [ids[i, : self.tokenizer.frames_for(n)].cpu().numpy().astype(np.int16)
                for i, n in enumerate(lengths.tolist())]

    def describe(self) -> dict:
        t = self.tokenizer
        return {"speech_vocab_size": int(t.vocab_size), "speech_frame_rate": float(t.frame_rate),
                "speech_tokenizer": t.describe()}


class SpeakerEmbeddings:
    """`spk.npy`: one speaker embedding per wav from an encoder of `ttsframe.eval.speaker`."""

    member = "spk.npy"

    def __init__(self, encoder, name: str, model: str | None = None):
        from ttsframe.eval.speaker import ENCODER_RATE

        self.encoder, self.name, self.model, self.sample_rate = encoder, name, model, ENCODER_RATE
        self.dim = getattr(encoder, "dim", None)
        self.key = {"speaker": name, "model": model}

    def __call__(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        rows = self.encoder.embed(wavs, self.sample_rate)  # (B, E), NaN rows for empty clips
        self.dim = rows.shape[1]
        return [np.nan_to_num(row).astype(np.float16) for row in rows]

    def describe(self) -> dict:
        return {"speaker_encoder": self.name, "speaker_model": self.model, "spk_dim": self.dim}


def build_extras(cfg, options: dict, exp_dir) -> tuple:
    """The extras a tokenize stage's options ask for: `speech_tokens: true` (the `tokenizer`
    config group's speech tokenizer), `speaker: <backend>` (an `eval.speaker` backend, e.g.
    resemblyzer, or campplus with `speaker_model: /path/campplus.onnx`)."""
    extras = []
    if options.get("speech_tokens"):
        from ttsframe.tokenizers.build import build_speech_tokenizer

        extras.append(SpeechTokens(build_speech_tokenizer(cfg.tokenizer, exp_dir)))
    if options.get("speaker"):
        from ttsframe.eval.speaker import build_speaker_encoder

        model = options.get("speaker_model")
        extras.append(SpeakerEmbeddings(build_speaker_encoder(options["speaker"], model), options["speaker"], model))
    return tuple(extras)
