"""Audio -> a log-magnitude spectrogram image (RGB uint8), drawn with matplotlib's Agg canvas
(a Figure per call, no pyplot state, so concurrent requests do not share a figure)."""

from __future__ import annotations

import numpy as np

FRAME_SECONDS, HOP_SECONDS = 0.032, 0.008
FLOOR_DB = -80.0  # below the loudest bin


def log_spectrogram(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) -> (F, N) dB relative to the loudest bin, floored at FLOOR_DB (Hann window)."""
    n_fft = 1 << max(6, int(round(np.log2(FRAME_SECONDS * sample_rate))))
    hop = max(1, int(HOP_SECONDS * sample_rate))
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if len(wav) < n_fft:
        wav = np.pad(wav, (0, n_fft - len(wav)))
    n = 1 + (len(wav) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(wav, n_fft)[::hop][:n] * np.hanning(n_fft)  # (N, n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2  # (F, N)
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    return np.maximum(db - db.max(), FLOOR_DB)


def spectrogram_image(wav: np.ndarray, sample_rate: int, width: float = 6.4, height: float = 2.4,
                      dpi: int = 100) -> np.ndarray:
    """(T,) audio -> (H, W, 3) uint8: time (s) across, frequency (kHz) up, with a dB colour bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    db = log_spectrogram(wav, sample_rate)
    seconds = len(wav) / sample_rate
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=FLOOR_DB, vmax=0.0,
                      extent=(0.0, max(seconds, 1e-3), 0.0, sample_rate / 2000.0))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("kHz")
    fig.colorbar(shown, ax=ax, label="dB")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
