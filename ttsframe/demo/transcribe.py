"""The prompt transcript when the user leaves it empty: the evaluation's bundled offline ASR
(`build_asr("faster_whisper")`: faster-whisper tiny.en, English), built on first use, once."""

from __future__ import annotations

import threading

import numpy as np


class LazyASR:
    """`asr(wav, sample_rate) -> text` for a (T,) float32 prompt; the model loads on the first call."""

    def __init__(self, backend: str = "faster_whisper", device: str = "cpu"):
        self.backend, self.device = backend, device
        self._asr = None
        self._lock = threading.Lock()

    def __call__(self, wav: np.ndarray, sample_rate: int) -> str:
        with self._lock:
            if self._asr is None:
                from ttsframe.eval.asr import build_asr

                self._asr = build_asr(self.backend, device=self.device)
            [text] = self._asr.transcribe([np.asarray(wav, dtype=np.float32)], sample_rate)
        return text
