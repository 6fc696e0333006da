"""Audio I/O through soundfile and resampling through soxr (torchaudio's I/O needs CUDA libs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from ttsframe.errors import AudioError


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str) -> AudioInfo:
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types for unreadable files
        raise AudioError(f"{path}: unreadable audio ({_short(e)})") from None
    return AudioInfo(info.samplerate, info.channels, info.frames)


def load_audio(
    path: str,
    sample_rate: int | None = None,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, int]:
    """Reads `path` as mono float32, optionally a [start, end) window in seconds.

    Returns (wav (T,), sample_rate); resampled with soxr when `sample_rate` is given.
    """
    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            first = int(round((start or 0.0) * sr))
            last = int(round(end * sr)) if end is not None else f.frames
            f.seek(min(first, f.frames))
            wav = f.read(max(last - first, 0), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(f"{path}: unreadable audio ({_short(e)})") from None
    wav = wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0]
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(wav, dtype=np.float32), sr


def resample(wav: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """wav (T,) float32 -> (T * target / source,)."""
    if source_rate == target_rate:
        return wav
    return soxr.resample(wav, source_rate, target_rate, quality="HQ").astype(np.float32)


def clips_at_rate(wavs: list[np.ndarray], sample_rate: int, target_rate: int) -> list[np.ndarray]:
    """Mono clips (T_i,) at `sample_rate` -> float32 (T_i * target / source,); AudioError naming
    the clip when one is not mono."""
    out = []
    for i, wav in enumerate(wavs):
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise AudioError(f"clip {i}: expected mono audio of shape (T,), got {wav.shape}")
        out.append(resample(wav, sample_rate, target_rate) if wav.size else wav)
    return out


def save_audio(path: str, wav: np.ndarray, sample_rate: int) -> None:
    """Writes 16-bit PCM wav atomically. wav: (T,) float in [-1, 1]."""
    from ttsframe.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def _short(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
