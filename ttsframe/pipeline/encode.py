"""Batched audio -> codec encoding for the tokenize stage, and fitting of self-fitted codecs.

Besides the codec, a shard may carry features from other models of the same audio ("extras":
speech-tokenizer ids, speaker embeddings). An extra is any object with

    member: str                                  the shard member it fills, e.g. "speech.npy"
    sample_rate: int                             the rate it wants (resampled from the codec's)
    __call__(wavs: list[np.ndarray]) -> list[np.ndarray]   one array per wav, in order
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ttsframe.data.audio import clips_at_rate, load_audio
from ttsframe.data.manifest import Utterance
from ttsframe.data.shards import ShardInfo, write_shard

FIT_MAX_SECONDS = 3600.0  # audio loaded to fit a codec (a seeded random subset of train)


def load_wavs(utterances: list[Utterance], sample_rate: int) -> list[np.ndarray]:
    """Reads utterances as mono float32 at `sample_rate` (threads: soundfile/soxr drop the GIL)."""
    def one(u: Utterance) -> np.ndarray:
        return load_audio(u.audio, sample_rate, u.start, u.end)[0]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, utterances))


def length_batches(utterances: list[Utterance], batch_seconds: float) -> list[list[int]]:
    """Indices grouped by length (sorted by duration) into batches of <= batch_seconds of padded audio."""
    order = sorted(range(len(utterances)), key=lambda i: utterances[i].duration)
    batches, current = [], []
    for i in order:
        # Sorted ascending, so the padded cost of a batch is its size times the newest duration.
        if current and (len(current) + 1) * utterances[i].duration > batch_seconds:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@torch.inference_mode()
def encode_batch(codec, wavs: list[np.ndarray]) -> list[np.ndarray]:
    """wavs: B arrays (T_i,) -> B arrays: codes int16 (K, T_i') or mel float16 (T_i', n_mels)."""
    lengths = torch.tensor([len(w) for w in wavs])
    padded = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        padded[i, : len(w)] = torch.from_numpy(w)
    out = codec.encode(padded, lengths)  # (B, K, T) codes or (B, D, T) frames
    features = []
    for i, n in enumerate(lengths.tolist()):
        item = out[i, :, : codec.frames_for(n)].cpu()
        if codec.n_codebooks > 0:
            features.append(item.numpy().astype(np.int16))  # (K, T)
        else:
            features.append(item.T.numpy().astype(np.float16))  # (T, n_mels)
    return features


def encode_shard(path: Path, utterances: list[Utterance], symbols: dict, token_ids: dict, codec,
                 batch_seconds: float, on_batch=None, extras: tuple = ()) -> ShardInfo:
    """Encodes `utterances` in length-grouped batches and writes them, in plan order, as one shard."""
    if codec.n_codebooks > 0 and codec.codebook_size > np.iinfo(np.int16).max:
        raise ValueError(f"codebook size {codec.codebook_size} does not fit the int16 codes of the shard format")
    features: list[np.ndarray | None] = [None] * len(utterances)
    extra_features: dict[str, list] = {extra.member: [None] * len(utterances) for extra in extras}
    for batch in length_batches(utterances, batch_seconds):
        wavs = load_wavs([utterances[i] for i in batch], codec.sample_rate)
        for i, feature in zip(batch, encode_batch(codec, wavs)):
            features[i] = feature
        for extra in extras:
            for i, feature in zip(batch, extra(clips_at_rate(wavs, codec.sample_rate, extra.sample_rate))):
                extra_features[extra.member][i] = feature
        if on_batch is not None:
            on_batch(len(batch))
    key = "codes.npy" if codec.n_codebooks > 0 else "mel.npy"
    samples = []
    for n, (u, feature) in enumerate(zip(utterances, features)):
        frames = int(feature.shape[-1] if codec.n_codebooks > 0 else feature.shape[0])
        samples.append({
            "__key__": u.id,
            "tokens.npy": np.asarray(token_ids[u.id], dtype=np.int32),
            key: feature,
            **{member: values[n] for member, values in extra_features.items()},
            "meta.json": {"id": u.id, "speaker": u.speaker, "duration": u.duration, "text": u.text,
                          "phonemes": " ".join(symbols[u.id]), "frames": frames},
        })
    return write_shard(path, samples)


def fit_codec(codec, train: list[Utterance], path: Path, seed: int = 0) -> None:
    """Loads a fitted codec from `path`, or fits it on (a subset of) train and saves it there."""
    if path.is_file():
        codec.load(path)
        print(f"tokenize: loaded the fitted codec from {path}")
        return
    chosen, total = [], 0.0
    for u in sorted(train, key=lambda u: random.Random(f"{seed}-{u.id}").random()):
        if total >= FIT_MAX_SECONDS:
            break
        chosen.append(u)
        total += u.duration
    print(f"tokenize: fitting the codec on {len(chosen)} train utterances ({total / 60:.1f} min)")
    codec.fit(load_wavs(chosen, codec.sample_rate))
    codec.save(path)
