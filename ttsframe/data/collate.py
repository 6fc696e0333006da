"""Stream samples -> one padded `Batch` of tensors with lengths and validity masks."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

TOKEN_PAD = 0  # text ids; the vocabulary reserves 0 for padding
# Codec codes are >= 0, so -1 can never be a real code: a model that forgets the mask fails loudly
# in its embedding, and losses can use it directly: F.cross_entropy(..., ignore_index=CODE_PAD).
CODE_PAD = -1
MEL_PAD = 0.0


@dataclass
class Batch:
    """B samples, padded. Masks are True on valid positions."""

    ids: list[str]
    speakers: list[str]
    tokens: torch.Tensor  # (B, L) long, TOKEN_PAD after each length
    token_lengths: torch.Tensor  # (B,) long
    token_mask: torch.Tensor  # (B, L) bool
    frame_lengths: torch.Tensor  # (B,) long
    frame_mask: torch.Tensor  # (B, T) bool
    codes: torch.Tensor | None = None  # (B, K, T) long, CODE_PAD after each length
    mel: torch.Tensor | None = None  # (B, T, D) float, MEL_PAD after each length
    speech: torch.Tensor | None = None  # (B, S) long speech-tokenizer ids, CODE_PAD after each length
    speech_lengths: torch.Tensor | None = None  # (B,) long
    spk: torch.Tensor | None = None  # (B, E) float speaker embeddings

    def __len__(self) -> int:
        return len(self.ids)

    def _map(self, fn) -> "Batch":
        changes = {f.name: fn(getattr(self, f.name)) for f in fields(self)
                   if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **changes)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """Lightning's batch transfer calls this."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "Batch":
        """DataLoader(pin_memory=True) calls this."""
        return self._map(lambda t: t.pin_memory())


def lengths_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """lengths (B,) -> (B, max_len) bool, True below each length."""
    return torch.arange(max_len)[None, :] < lengths[:, None]


def collate(samples: list[dict], code_pad: int = CODE_PAD) -> Batch:
    """Samples from `ShardStream` -> Batch (all codes or all mels)."""
    if not samples:
        raise ValueError("collate got an empty list of samples")
    token_lengths = torch.tensor([len(s["tokens"]) for s in samples], dtype=torch.long)
    frame_lengths = torch.tensor([s["frames"] for s in samples], dtype=torch.long)
    B, L, T = len(samples), int(token_lengths.max()), int(frame_lengths.max())
    tokens = torch.full((B, L), TOKEN_PAD, dtype=torch.long)
    for i, s in enumerate(samples):
        tokens[i, : len(s["tokens"])] = s["tokens"]
    codes = mel = None
    if "codes" in samples[0]:
        K = samples[0]["codes"].shape[0]
        codes = torch.full((B, K, T), code_pad, dtype=torch.long)
        for i, s in enumerate(samples):
            codes[i, :, : s["frames"]] = s["codes"]  # (K, T_i)
    else:
        D = samples[0]["mel"].shape[1]
        mel = torch.full((B, T, D), MEL_PAD, dtype=torch.float32)
        for i, s in enumerate(samples):
            mel[i, : s["frames"]] = s["mel"]  # (T_i, D)
    speech = speech_lengths = spk = None
    if "speech" in samples[0]:
        speech_lengths = torch.tensor([len(s["speech"]) for s in samples], dtype=torch.long)
        speech = torch.full((B, int(speech_lengths.max())), code_pad, dtype=torch.long)
        for i, s in enumerate(samples):
            speech[i, : len(s["speech"])] = s["speech"]  # (S_i,)
    if "spk" in samples[0]:
        spk = torch.stack([s["spk"] for s in samples])  # (B, E)
    return Batch(
        ids=[s["id"] for s in samples], speakers=[s["speaker"] for s in samples],
        tokens=tokens, token_lengths=token_lengths, token_mask=lengths_mask(token_lengths, L),
        frame_lengths=frame_lengths, frame_mask=lengths_mask(frame_lengths, T), codes=codes, mel=mel,
        speech=speech, speech_lengths=speech_lengths, spk=spk,
    )
