"""MOS predictors: neural estimates of how a listener would rate each clip (1 = bad, 5 = excellent).

One registry (`MOS_PREDICTORS`), built with `build_mos_predictor(name, **kwargs)`. Each predictor
scores 16 kHz audio (clips at other rates are resampled with soxr) and returns one dict per clip.
A predictor that cannot be loaded raises `MetricUnavailable` saying what to provide; the
evaluation stage records "skipped: <reason>" for it instead of a score.

* `dnsmos`: Microsoft's DNSMOS P.835 (sig: speech quality, bak: background noise, ovrl: overall)
  and P.808 (p808: overall) ONNX models shipped in the `speechmos` wheel, run by onnxruntime on
  CPU with speechmos's own scoring, which follows Microsoft's `dnsmos_local.py`: a clip shorter
  than 9.01 s is doubled (appended to itself) until it is at least that long, and the score is
  the mean over 9.01 s windows taken every second. `looped_windows=N` scores only the first N
  windows of a doubled clip: on 12 built-in test utterances (2-4 s) one window differed from all
  of them by 0.046 OVRL per clip on average (mean difference -0.011) at a quarter of the time. Input is clipped to [-1, 1] first (speechmos
  rejects anything outside it, as a 16-bit wav file could not hold it). An empty clip gets NaN.
* `utmos`: the UTMOS22 strong learner of tarepan/SpeechMOS, loaded with torch.hub from a local
  clone of that repository (its hubconf fetches the weights into the torch hub cache, which
  must already hold them offline; its package, also named `speechmos`, is kept apart from the
  DNSMOS wheel's). Clips are scored one at a time (the model takes no padding
  mask, so padding would change the score). An empty clip gets NaN.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager

import numpy as np
import torch

from ttsframe.codecs.base import resolve_device
from ttsframe.data.audio import clips_at_rate
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.provenance import package_version

MOS_RATE = 16000  # both predictors take 16 kHz audio
WINDOW_SECONDS = 9.01  # DNSMOS's input length


class MetricUnavailable(UserError):
    """A predictor cannot be loaded here; the message says exactly what to provide."""


class DNSMOS:
    """DNSMOS P.835 + P.808 from the speechmos wheel: {"sig", "bak", "ovrl", "p808"} per clip."""

    KEYS = ("sig", "bak", "ovrl", "p808")

    def __init__(self, personalized: bool = False, looped_windows: int | None = None):
        try:
            from speechmos import dnsmos
        except ImportError as e:
            raise MetricUnavailable(f"dnsmos: `pip install speechmos onnxruntime librosa` ({e})") from e
        folder = os.path.dirname(os.path.abspath(dnsmos.__file__))
        self.primary = os.path.join(folder, "pdnsmos_models" if personalized else "dnsmos_models", "sig_bak_ovr.onnx")
        self.p808 = os.path.join(folder, "dnsmos_models", "model_v8.onnx")
        for path in (self.primary, self.p808):
            if not os.path.isfile(path):
                raise MetricUnavailable(f"dnsmos: the speechmos wheel lacks {path}; reinstall speechmos")
        self.personalized = personalized
        self.looped_windows = looped_windows
        self.model = dnsmos.DNSMOS(self.primary, self.p808)  # two onnxruntime sessions

    def score(self, wavs: list[np.ndarray], sample_rate: int) -> list[dict[str, float]]:
        """Clips (T_i,) at `sample_rate` -> one {"sig", "bak", "ovrl", "p808"} dict per clip."""
        scores = []
        for wav in clips_at_rate(wavs, sample_rate, MOS_RATE):
            if wav.size == 0:
                scores.append(dict.fromkeys(self.KEYS, math.nan))
                continue
            raw = self.model(self.loop(np.clip(wav, -1.0, 1.0)), MOS_RATE, self.personalized)
            scores.append({key: float(raw[f"{key}_mos"]) for key in self.KEYS})
        return scores

    def loop(self, wav: np.ndarray) -> np.ndarray:
        """A clip shorter than one window, doubled as dnsmos_local.py does and, with
        `looped_windows`, cut to that many 1-s hops (the hops of a looped clip repeat its content)."""
        window = int(WINDOW_SECONDS * MOS_RATE)
        if self.looped_windows is None or len(wav) >= window:
            return wav
        while len(wav) < window:
            wav = np.append(wav, wav)
        return wav[: window + (self.looped_windows - 1) * MOS_RATE]

    def describe(self) -> dict:
        return {"predictor": "dnsmos", "model": "DNSMOS P.835 sig_bak_ovr + P.808 model_v8 (onnx)",
                "personalized": self.personalized, "source": self.primary, "speechmos": package_version("speechmos"),
                "onnxruntime": package_version("onnxruntime"), "device": "cpu", "sample_rate": MOS_RATE,
                "short_clips": "doubled until >= 9.01 s (dnsmos_local.py convention); empty -> NaN",
                "looped_windows": self.looped_windows}


class UTMOS:
    """UTMOS22 strong learner via torch.hub from a local clone of tarepan/SpeechMOS: {"utmos"} per clip."""

    def __init__(self, repo_dir: str | None = None, entry: str = "utmos22_strong", device: str = "auto"):
        hint = ("set eval.utmos_repo to a local clone of tarepan/SpeechMOS (`git clone "
                "https://github.com/tarepan/SpeechMOS`) whose weights are in the torch hub cache "
                f"(run `torch.hub.load(<clone>, '{entry}', source='local', trust_repo=True)` once with network)")
        if not repo_dir:
            raise MetricUnavailable(f"utmos: {hint}")
        repo_dir = os.path.abspath(os.path.expanduser(repo_dir))
        if not os.path.isfile(os.path.join(repo_dir, "hubconf.py")):
            raise MetricUnavailable(f"utmos: {repo_dir} has no hubconf.py; {hint}")
        try:
            with _clone_owns_speechmos_name():
                model = torch.hub.load(repo_dir, entry, source="local", trust_repo=True)
        except (OSError, RuntimeError, ImportError, AttributeError) as e:  # URLError is an OSError
            reason = " ".join(str(e).split())[:300]
            raise MetricUnavailable(f"utmos: loading `{entry}` from {repo_dir} failed ({reason}); {hint}") from e
        self.repo_dir, self.entry = repo_dir, entry
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def score(self, wavs: list[np.ndarray], sample_rate: int) -> list[dict[str, float]]:
        """Clips (T_i,) at `sample_rate` -> one {"utmos": float} per clip."""
        scores = []
        for wav in clips_at_rate(wavs, sample_rate, MOS_RATE):
            if wav.size == 0:
                scores.append({"utmos": math.nan})
                continue
            wave = torch.from_numpy(wav).to(self.device)[None]  # (1, T)
            scores.append({"utmos": float(self.model(wave, MOS_RATE)[0])})  # model: (B, T), sr -> (B,)
        return scores

    def describe(self) -> dict:
        return {"predictor": "utmos", "model": self.entry, "source": self.repo_dir,
                "device": str(self.device), "sample_rate": MOS_RATE}


@contextmanager
def _clone_owns_speechmos_name():
    """Lets the SpeechMOS clone import its own top-level package `speechmos` while inside.

    The clone's hubconf imports `speechmos.utmos22...`, but the DNSMOS wheel is also called
    `speechmos`; whichever was imported first would shadow the other. The wheel's modules are
    set aside while the hubconf runs and put back afterwards (the loaded model keeps references
    to the clone's classes, so it does not need the name any more).
    """

    def ours(name: str) -> bool:
        return name == "speechmos" or name.startswith("speechmos.")

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


# name -> predictor class; see build_mos_predictor for the arguments each takes
MOS_PREDICTORS: dict[str, type] = {
    "dnsmos": DNSMOS,
    "utmos": UTMOS,
}


def build_mos_predictor(name: str, **kwargs):
    """The predictor registered as `name`: DNSMOS(personalized=False) or UTMOS(repo_dir, entry, device).

    Raises ConfigError for an unknown name, MetricUnavailable when it cannot be loaded here.
    """
    if name not in MOS_PREDICTORS:
        raise ConfigError(f"unknown MOS predictor `{name}`; valid predictors: {', '.join(sorted(MOS_PREDICTORS))}")
    return MOS_PREDICTORS[name](**kwargs)
