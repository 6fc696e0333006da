"""Streaming CosyVoice synthesis: audio chunks while the LM is still decoding.

    LM tokens, one step at a time (`lm_generate.token_steps`)
      -> every `chunk_tokens` new tokens: the flow over all tokens so far in chunk mode
         (`CosyVoiceFlow.sample(mask_mode="chunk")`): frames of complete chunks never change
         when more tokens arrive (CosyVoice2Flow's: once its look-ahead tokens have arrived too),
         and the noise of a frame does not depend on the length, so the frames emitted now are final;
      -> the vocoder over the new frames with LEFT_CONTEXT frames before them and the newest
         LOOKAHEAD frames held back (the vocoder's convolutions see both sides), the chunk
         boundary cross-faded over FADE_SAMPLES samples.

The concatenated stream therefore equals offline synthesis with the chunk mask
(`decode_tokens(..., mask_mode="chunk")`) in its mel exactly, and in its audio up to the vocoder's
edge effects at the boundaries (tests/unit/models/cosyvoice/test_streaming.py says how close).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from ttsframe.inference.mode import inference_steps
from ttsframe.inference.request import SynthesisItem
from ttsframe.inference.text import text_token_ids
from ttsframe.models.cosyvoice.lm_generate import token_steps
from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions
from ttsframe.vocoders.bundle import vocode_mels

LEFT_CONTEXT = 32  # mel frames vocoded before a chunk's first new frame
LOOKAHEAD = 16  # newest mel frames held back until more arrive (or the end): ~0.19 s
FADE_SAMPLES = 256  # cross-fade at each boundary


@dataclass
class StreamStats:
    """Timing of one stream: seconds to the first chunk, total seconds, audio seconds."""

    first_chunk_seconds: float | None = None
    compute_seconds: float = 0.0
    audio_seconds: float = 0.0
    chunks: int = 0
    started: float = field(default_factory=time.perf_counter)


class ChunkVocoder:
    """Mel frames arriving in pieces -> audio pieces (see the module doc)."""

    def __init__(self, synth):
        self.synth, self.hop = synth, synth.mel_config.hop_length
        self.mel = torch.zeros(0, synth.mel_config.n_mels)
        self.done_frames = 0  # frames whose audio (minus the fade tail) has been emitted
        self.tail: np.ndarray | None = None  # FADE_SAMPLES of audio past done_frames, to cross-fade

    def push(self, frames: torch.Tensor, final: bool = False) -> np.ndarray:
        """Adds (F, M) final frames; returns the audio that is ready (all of it when `final`)."""
        self.mel = torch.cat([self.mel, frames.cpu()])
        ready = len(self.mel) if final else len(self.mel) - LOOKAHEAD
        if ready <= self.done_frames:
            return np.zeros(0, dtype=np.float32)
        start = max(0, self.done_frames - LEFT_CONTEXT)
        [wav] = vocode_mels(self.synth.features, self.synth.mel_config, [self.mel[start:]])
        wav = wav[(self.done_frames - start) * self.hop:]  # from done_frames on
        cut = (ready - self.done_frames) * self.hop
        piece, tail = wav[:cut], wav[cut:cut + FADE_SAMPLES]
        if self.tail is not None and len(self.tail):
            n = min(len(self.tail), len(piece))
            ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
            piece = piece.copy()
            piece[:n] = self.tail[:n] * (1 - ramp) + piece[:n] * ramp
        self.done_frames, self.tail = ready, (None if final else tail)
        return np.ascontiguousarray(piece, dtype=np.float32)


def stream_item(synth, item: SynthesisItem, options: CosyVoiceSamplingOptions = CosyVoiceSamplingOptions(),
                chunk_tokens: int | None = None, stats: StreamStats | None = None) -> Iterator[np.ndarray]:
    """Yields (T_k,) float32 audio at `synth.sample_rate` for one item, chunk by chunk.

    Args:
        synth: a `CosyVoiceSynthesizer`.
        chunk_tokens: LM tokens per flow call; None: the flow's `chunk_tokens` (its training chunk).
        stats: filled with the first-chunk latency and the compute time, when given.
    """
    stats = stats if stats is not None else StreamStats()
    chunk = chunk_tokens or synth.flow.config.chunk_tokens
    if chunk % synth.flow.config.chunk_tokens:
        raise ValueError(f"chunk_tokens {chunk} must be a multiple of the flow's chunk of "
                         f"{synth.flow.config.chunk_tokens} tokens (frames of part chunks would change later)")
    yield from inference_steps(_stream(synth, item, options, chunk, stats))  # whichever thread resumes it
    stats.compute_seconds = time.perf_counter() - stats.started


def _stream(synth, item: SynthesisItem, options: CosyVoiceSamplingOptions, chunk: int,
            stats: StreamStats) -> Iterator[np.ndarray]:
    """`stream_item`'s steps (each run under inference mode by it)."""
    [text] = text_token_ids(synth.frontend, synth.vocab, [item.text])
    prompt = synth.encode_prompts([item])
    full = torch.cat([prompt["text"][0], text])
    vocoder, tokens, emitted = ChunkVocoder(synth), [], 0
    n_prompt = len(prompt["speech"][0])
    steps = token_steps(synth.lm, full[None].to(synth.device), torch.tensor([len(full)]),
                        prompt["spk"] if synth.lm.config.spk_dim else None,
                        prompt["speech"][0][None].to(synth.device), torch.tensor([n_prompt]),
                        options.lm_options(), prompt_text_lengths=torch.tensor([len(prompt["text"][0])]))
    ahead = getattr(synth.flow.config, "ahead", 0)  # CosyVoice2Flow's encoder looks this many tokens ahead
    for step in steps:
        [token] = step.tolist()
        if token is None:
            continue
        tokens.append(token)
        settled = len(tokens) - ahead  # target tokens whose look-ahead has arrived
        if settled > 0 and (n_prompt + settled) % chunk == 0:  # the flow's chunks count from the prompt's first token
            ready = final_frames(n_prompt, settled, synth.flow.config)
            if ready > emitted:
                emitted = yield from _emit(synth, vocoder, tokens, ready, emitted, prompt, options, stats)
    yield from _emit(synth, vocoder, tokens, None, emitted, prompt, options, stats)


def final_frames(n_prompt: int, n_tokens: int, config) -> int:
    """Target mel frames that no later token can change, with `n_tokens` target tokens after
    `n_prompt` prompt tokens: a frame belongs to the chunk of the latest token it interpolates
    (ceil of its position, `flow_masks.frame_mask`), so it is final once that chunk is complete."""
    complete = (n_prompt + n_tokens) // config.chunk_tokens * config.chunk_tokens  # tokens in complete chunks
    last = complete - n_prompt - 1  # the last target token inside them
    return 0 if last < 0 else math.floor(last * config.frames_per_token) + 1


def _emit(synth, vocoder: ChunkVocoder, tokens: list[int], ready: int | None, emitted: int, prompt: dict,
          options: CosyVoiceSamplingOptions, stats: StreamStats):
    """Runs the flow over the tokens so far, pushes frames [emitted, ready) (all when `ready` is
    None: the end), yields their audio; returns the frames emitted so far."""
    final = ready is None
    if tokens:
        [mel] = synth.decode_tokens([torch.tensor(tokens)], prompt, options, mask_mode="chunk")
    else:
        mel = torch.zeros(0, synth.mel_config.n_mels)
    upto = len(mel) if final else min(ready, len(mel))
    audio = vocoder.push(mel[emitted:upto], final=final)
    if len(audio):
        if stats.first_chunk_seconds is None:
            stats.first_chunk_seconds = time.perf_counter() - stats.started
        stats.chunks += 1
        stats.audio_seconds += len(audio) / synth.sample_rate
        yield audio
    return upto
