"""Log-mel spectrogram -> RGB image (numpy + Pillow; no plotting library needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A dark-to-bright colour ramp (black, purple, red, orange, pale yellow), interpolated per pixel.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


def spectrogram_rgb(log_mel: np.ndarray, floor_db: float = 80.0) -> np.ndarray:
    """log_mel (n_mels, T), natural log -> uint8 (n_mels, T, 3), low frequencies at the bottom."""
    db = log_mel * (20.0 / np.log(10.0))
    db = np.clip(db - db.max(), -floor_db, 0.0)
    x = (db + floor_db) / floor_db * (len(_RAMP) - 1)  # 0 .. len-1
    low = np.clip(np.floor(x).astype(int), 0, len(_RAMP) - 2)
    frac = (x - low)[..., None]
    rgb = _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac
    return np.ascontiguousarray(rgb[::-1].astype(np.uint8))


def save_png(path: str | Path, rgb: np.ndarray, scale: int = 2) -> None:
    """Writes an (H, W, 3) uint8 image, enlarged `scale` times vertically for readability."""
    from PIL import Image

    from ttsframe.utils.atomic import atomic_path

    image = Image.fromarray(rgb).resize((rgb.shape[1], rgb.shape[0] * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
