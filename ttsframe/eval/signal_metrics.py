"""Objective signal metrics of one utterance against its ground-truth recording.

    mcd                          mel-cepstral distortion in dB, DTW-aligned (any synthesis)
    log_f0_rmse, voicing_error   F0 on the MCD alignment (any synthesis)
    pesq, stoi                   sample-aligned: resynthesis of the same recording only

MCD follows the formula TTS papers use, MCD = (10 / ln 10) * sqrt(2 * sum_{d=1..D} (c_d - c'_d)^2),
averaged over the frame pairs of a DTW path, with D = ORDER = 24 and c_0 (energy) left out. The
cepstra are NOT SPTK mel-cepstra (pysptk / pyworld are not available here), so absolute values
differ from SPTK-based toolkits; compare numbers between runs of this framework only. Ours:

* analysis: the log-mel frames of `mel_distance.analysis_config(rate)` (natural log of the
  mel-filtered magnitude, ~46 ms window, hop a quarter of it);
* cepstra: orthonormal DCT-II over the M mel bands, divided by sqrt(2 M). That scale puts them
  in the convention of the formula, ln|H(w)| = c_0 + 2 sum_d c_d cos(d w) (natural-log
  amplitude, mel-warped frequency), so sqrt(2 sum_d (c_d - c'_d)^2) is exactly the RMS over
  the mel bands of the log-amplitude difference smoothed to D cepstra, mean removed;
* silence: by default the frames more than TRIM_DB (40 dB) below the loudest frame are cut
  from both ends of each input before alignment (`trim_silence=False` keeps everything);
* alignment: `mel_distance.dtw_path` on the per-pair MCD; the score is its mean along the path.

Identical audio gives exactly 0 and a gain change ~0 (c_0 is left out). Measured on espeak
speech at 16 kHz: the same sentence at 2/3 of the speed 1.2 dB, another sentence or another
voice ~5.5 dB; a delay by whole hops 0, but by a fraction of a hop up to ~1.2 dB (half a hop):
the frames then sample the speech at another phase, a floor for audio that is not sample-aligned.

F0: `librosa.pyin` (50-600 Hz, its HMM voicing decision) on the same frame grid, with pitch
bins of 0.2 semitone (F0 steps of 1.2 %, so ln F0 is quantised to +-0.006): about 0.3 s per 3 s
clip here, against ~1 s with librosa's default 0.1 semitone; the first call of a process loads
numba-compiled code (~3 s; ~40 s once per install while numba fills its cache). A plain yin
with a threshold voicing rule was tried and rejected: on espeak speech its octave errors on a
few frames dominated the RMSE (0.1-0.2 for the same sentence at another speed, pyin 0.016).
log_f0_rmse is the RMSE of ln F0 over the aligned pairs voiced in both (NaN below
MIN_VOICED_FRAMES such pairs); voicing_error the share of aligned pairs whose voiced/unvoiced
decisions differ.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct
from scipy.spatial.distance import cdist

from ttsframe.codecs.mel import MelConfig
from ttsframe.eval.mel_distance import analysis_config, dtw_path, log_mel

log = logging.getLogger(__name__)

ORDER = 24  # cepstra c_1..c_ORDER
MCD_SCALE = 10 / math.log(10) * math.sqrt(2)  # dB per unit of Euclidean cepstral distance
TRIM_DB = 40.0
F0_MIN, F0_MAX = 50.0, 600.0
F0_RESOLUTION = 0.2  # semitones per pyin pitch bin (librosa's default 0.1 is ~3x slower)
MIN_VOICED_FRAMES = 5
PESQ_RATE = 16000  # wide-band PESQ
_logged: set[tuple[str, str]] = set()  # (metric, error type) already logged


def check_audio(name: str, wav: np.ndarray) -> np.ndarray:
    """(T,) finite, non-empty mono audio as float32; ValueError naming `name` otherwise."""
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"{name}: expected mono audio of shape (T,), got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError(f"{name}: empty audio")
    if not np.isfinite(wav).all():
        raise ValueError(f"{name}: contains NaN or infinite samples")
    return wav.astype(np.float32, copy=False)


def mel_cepstra(frames: np.ndarray, order: int = ORDER) -> np.ndarray:
    """(T, M) natural-log mel magnitudes -> (T, order) cepstra c_1..c_order (module docstring)."""
    return dct(frames, type=2, norm="ortho", axis=1)[:, 1:order + 1] / math.sqrt(2 * frames.shape[1])


def distortion_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T_a, D), (T_b, D) cepstra -> (T_a, T_b) MCD in dB of every frame pair."""
    return MCD_SCALE * cdist(a, b, metric="euclidean")


def loud_span(frames: np.ndarray, trim_db: float = TRIM_DB) -> slice:
    """The frames from the first to the last within `trim_db` of the loudest. frames: (T, M) log-mel."""
    energy_db = 10 * np.log10(np.exp(2 * frames).sum(axis=1))  # (T,)
    loud = np.nonzero(energy_db >= energy_db.max() - trim_db)[0]
    return slice(int(loud[0]), int(loud[-1]) + 1)


@dataclass
class Alignment:
    """Two utterances on one analysis grid, trimmed and DTW-aligned on their mel cepstra."""

    config: MelConfig
    spans: tuple[slice, slice]  # frames kept of each input
    path: np.ndarray  # (L, 2) aligned frame pairs, indices within the spans
    distortion: np.ndarray  # (L,) MCD of each pair, dB


def align(reference: np.ndarray, synthesis: np.ndarray, sample_rate: int,
          trim_silence: bool = True) -> Alignment | None:
    """DTW alignment of the two inputs' mel cepstra; None when either is shorter than one frame."""
    config = analysis_config(sample_rate)
    frames = [log_mel(wav, config) for wav in (reference, synthesis)]  # (T_a, M), (T_b, M)
    if not len(frames[0]) or not len(frames[1]):
        return None
    spans = tuple(loud_span(f) if trim_silence else slice(0, len(f)) for f in frames)
    cost = distortion_matrix(*(mel_cepstra(f[s]) for f, s in zip(frames, spans)))  # (T_a', T_b')
    path = dtw_path(cost)
    return Alignment(config, spans, path, cost[path[:, 0], path[:, 1]])


def mcd(reference: np.ndarray, synthesis: np.ndarray, sample_rate: int, trim_silence: bool = True) -> float:
    """Mel-cepstral distortion in dB after DTW (module docstring); NaN for audio under one frame.

    Args:
        reference, synthesis: (T_a,), (T_b,) mono audio at `sample_rate`.
        trim_silence: cut frames more than TRIM_DB below the loudest from both ends of each first.
    """
    alignment = align(check_audio("reference", reference), check_audio("synthesis", synthesis), sample_rate,
                      trim_silence)
    return float("nan") if alignment is None else float(alignment.distortion.mean())


def pitch(wav: np.ndarray, config: MelConfig) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, NaN when unvoiced) and voiced flag of every analysis frame: (T,), (T,) bool,
    T = config.frames_for(len(wav)), frame t centred like mel frame t."""
    import librosa  # imported here: only the F0 metric needs it (numba start-up)

    padded = np.pad(wav.astype(np.float64), config.padding)  # zeros, where the mel frames reflect
    f0, voiced, _ = librosa.pyin(padded, fmin=F0_MIN, fmax=F0_MAX, sr=config.sample_rate, frame_length=config.n_fft,
                                 hop_length=config.hop_length, center=False, resolution=F0_RESOLUTION)
    return f0, voiced


def log_f0_rmse(reference: np.ndarray, synthesis: np.ndarray, sample_rate: int, trim_silence: bool = True) -> dict:
    """F0 errors on the MCD alignment (module docstring).

    Returns:
        {"log_f0_rmse": RMSE of ln F0 over pairs voiced in both (NaN under MIN_VOICED_FRAMES of them),
         "voicing_error": share of pairs with different voicing, "voiced_frames": pairs voiced in both}.
    """
    reference, synthesis = check_audio("reference", reference), check_audio("synthesis", synthesis)
    return _f0_errors(align(reference, synthesis, sample_rate, trim_silence), reference, synthesis)


def _f0_errors(alignment: Alignment | None, reference: np.ndarray, synthesis: np.ndarray) -> dict:
    if alignment is None:
        return {"log_f0_rmse": float("nan"), "voicing_error": float("nan"), "voiced_frames": 0}
    (f0_a, voiced_a), (f0_b, voiced_b) = (tuple(track[span] for track in pitch(wav, alignment.config))
                                          for wav, span in zip((reference, synthesis), alignment.spans))
    i, j = alignment.path.T
    both = voiced_a[i] & voiced_b[j]  # (L,)
    count = int(both.sum())
    rmse = (float(np.sqrt(np.mean((np.log(f0_a[i][both]) - np.log(f0_b[j][both])) ** 2)))
            if count >= MIN_VOICED_FRAMES else float("nan"))
    return {"log_f0_rmse": rmse, "voicing_error": float(np.mean(voiced_a[i] != voiced_b[j])),
            "voiced_frames": count}


def _same_length(reference: np.ndarray, degraded: np.ndarray) -> np.ndarray:
    """`degraded` cut or zero-padded to the reference's length (both sample-aligned already)."""
    return np.pad(degraded[:len(reference)], (0, max(0, len(reference) - len(degraded))))


def _nan_once(metric: str, error: Exception | Warning) -> float:
    """NaN for a metric its library could not compute; the reason is logged once per kind."""
    key = (metric, type(error).__name__)
    if key not in _logged:
        _logged.add(key)
        log.warning("%s: NaN (%s: %s); further %s of this kind are not logged",
                    metric, type(error).__name__, error, metric)
    return float("nan")


def pesq_score(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, ~1.0-4.64) at 16 kHz of a sample-aligned resynthesis; NaN when
    `pesq` cannot score it (silent or under 0.25 s input)."""
    from pesq import PesqError, pesq

    from ttsframe.data.audio import resample

    reference = resample(check_audio("reference", reference), sample_rate, PESQ_RATE)
    degraded = _same_length(reference, resample(check_audio("degraded", degraded), sample_rate, PESQ_RATE))
    try:
        return float(pesq(PESQ_RATE, reference, degraded, "wb"))
    except (PesqError, ValueError) as e:  # ValueError: silent degraded audio (NaN inside the wrapper)
        return _nan_once("pesq", e)


def stoi_score(reference: np.ndarray, degraded: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """STOI (or extended STOI), ~0-1, of a sample-aligned resynthesis; `pystoi` resamples to 10 kHz
    itself. NaN when too little of it is speech (pystoi would warn and return 1e-5)."""
    from pystoi import stoi

    reference = check_audio("reference", reference).astype(np.float64)
    degraded = _same_length(reference, check_audio("degraded", degraded).astype(np.float64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = float(stoi(reference, degraded, sample_rate, extended=extended))
    too_short = [w.message for w in caught if "Not enough STFT frames" in str(w.message)]
    return _nan_once("stoi", too_short[0]) if too_short else score


def signal_metrics(reference: np.ndarray, synthesis: np.ndarray, sample_rate: int, aligned: bool) -> dict:
    """Per-utterance metrics for the eval stage: {mcd, log_f0_rmse, voicing_error}, plus {pesq, stoi}
    when `aligned` (a resynthesis of `reference`, sample for sample). One DTW serves MCD and F0."""
    reference, synthesis = check_audio("reference", reference), check_audio("synthesis", synthesis)
    alignment = align(reference, synthesis, sample_rate)
    f0 = _f0_errors(alignment, reference, synthesis)
    out = {"mcd": float("nan") if alignment is None else float(alignment.distortion.mean()),
           "log_f0_rmse": f0["log_f0_rmse"], "voicing_error": f0["voicing_error"]}
    if aligned:
        out["pesq"] = pesq_score(reference, synthesis, sample_rate)
        out["stoi"] = stoi_score(reference, synthesis, sample_rate)
    return out
