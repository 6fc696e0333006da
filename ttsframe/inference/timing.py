"""Seconds spent in each part of a synthesis call (frontend, prompt encoding, models, decoder)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class PartTimer:
    """Accumulates wall-clock seconds per named part: `with timer("ar"): ...`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - began
