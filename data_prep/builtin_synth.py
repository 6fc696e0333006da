"""Speech synthesis for the built-in corpus: espeak-ng through ctypes, and Debian's flite.

espeak-ng is the library shipped by the `espeakng-loader` wheel, so no system package or root
is needed. It is only ever loaded in worker processes (`python -m data_prep.builtin_synth`,
fed one JSON job per line): the process that runs the pipeline phonemizes with its own copy
of the library, and never shares state with this one. Plain subprocesses rather than a
multiprocessing pool: they re-run nothing of the caller's main script, inherit none of its
threads or loaded libraries, and start from the same state whatever the caller did before.

The library keeps state from one utterance to the next (the same text comes out a few samples
different the second time), which would make the audio depend on the order in which a worker
happened to get its jobs, and it seeds its noise generator (breathy voices) differently in each
process. So each worker initialises the library once and forks a child per espeak utterance:
every child starts from the same freshly initialised state, sets the job's noise seed, sends
the samples back through a pipe and exits. That costs a few milliseconds per utterance.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ttsframe.data.audio import resample, save_audio

# espeak_lib.h constants.
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4
EE_OK = 0

PAD_SECONDS = 0.1  # silence kept before and after the speech
TARGET_RMS_DB = -20.0  # loudness every utterance is scaled to...
MAX_PEAK = 0.95  # ...unless that would push a peak above this


@dataclass(frozen=True)
class Voice:
    """One speaker of the corpus.

    espeak: `spec` is a voice name with a variant ("en-us+m3"), `pitch` and `pitch_range` are
    0-100 (espeak's default 50) and `rate` is in words per minute (default 175). flite: `spec`
    is a voice of `flite -lv`; pitch, pitch_range and rate are not used.
    """

    name: str  # speaker name in the manifests; no '.', '/', '_' or spaces
    engine: str  # "espeak" | "flite"
    spec: str
    description: str
    pitch: int = 50
    rate: int = 175
    pitch_range: int = 50


@dataclass(frozen=True)
class Job:
    voice: Voice
    text: str
    path: str  # wav written here, atomically
    sample_rate: int
    seed: int = 1  # espeak's noise generator

    def to_line(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def from_line(cls, line: str) -> "Job":
        row = json.loads(line)
        return cls(**{**row, "voice": Voice(**row["voice"])})


def flite_binary() -> str | None:
    return shutil.which("flite")


def flite_voices() -> frozenset[str]:
    """The voices `flite -lv` lists; empty when flite is not installed."""
    if flite_binary() is None:
        return frozenset()
    out = subprocess.run([flite_binary(), "-lv"], capture_output=True, text=True, check=False)
    return frozenset(out.stdout.partition(":")[2].split())


def flite_version() -> str:
    out = subprocess.run([flite_binary(), "--version"], capture_output=True, text=True, check=False)
    return " ".join(out.stdout.split())


def finish(wav: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Trims silence to PAD_SECONDS at each end, resamples and sets the loudness. (T,) -> (T',)."""
    wav = wav.astype(np.float32)
    loud = np.nonzero(np.abs(wav) > 0.02 * (np.abs(wav).max() + 1e-9))[0]
    if loud.size:
        wav = wav[loud[0]:loud[-1] + 1]
    pad = np.zeros(int(PAD_SECONDS * source_rate), np.float32)
    wav = resample(np.concatenate([pad, wav, pad]), source_rate, target_rate)
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
    peak = float(np.abs(wav).max())
    if rms > 0:
        gain = min(10 ** (TARGET_RMS_DB / 20) / rms, MAX_PEAK / peak)
        wav = wav * np.float32(gain)
    return wav


class Espeak:
    """The espeak-ng library of the espeakng-loader wheel, in synchronous (retrieval) mode."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed for data path {data.decode()}")
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = self._CALLBACK(self._collect)  # kept alive as long as the library uses it
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count, events) -> int:
        if samples and count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0: go on

    def speak(self, voice: Voice, text: str, seed: int = 1) -> np.ndarray:
        """Returns int16 samples (T,) at self.sample_rate."""
        lib = self._lib
        lib.espeak_ng_SetRandSeed(seed)
        if lib.espeak_SetVoiceByName(voice.spec.encode()) != EE_OK:
            raise RuntimeError(f"espeak-ng has no voice {voice.spec!r}")
        lib.espeak_SetParameter(PARAM_RATE, voice.rate, 0)
        lib.espeak_SetParameter(PARAM_PITCH, voice.pitch, 0)
        lib.espeak_SetParameter(PARAM_RANGE, voice.pitch_range, 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if status != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


_espeak: Espeak | None = None  # one per worker process, never touched in the parent


def run_job(job: Job) -> str:
    """Synthesises one utterance into job.path (runs in a worker process). Returns the path."""
    if job.voice.engine == "flite":
        wav, rate = _flite(job.voice, job.text, os.path.dirname(job.path))
    else:
        wav, rate = _espeak_from_fresh_state(job.voice, job.text, job.seed)
    if not np.abs(wav).max(initial=0.0) > 0:
        raise RuntimeError(f"{job.voice.name} gave no audio for {job.text!r}")
    save_audio(job.path, finish(wav, rate, job.sample_rate), job.sample_rate)
    return job.path


def _espeak_from_fresh_state(voice: Voice, text: str, seed: int) -> tuple[np.ndarray, int]:
    """Speaks in a forked child, so that no utterance sees the state another one left behind."""
    global _espeak
    if _espeak is None:
        _espeak = Espeak()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: speak, send the samples, leave without any cleanup
        code = 0
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as out:
                out.write(_espeak.speak(voice, text, seed).tobytes())
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()  # to the end before waiting, so a full pipe cannot block the child
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"espeak-ng failed on {voice.spec!r}: {text!r} (traceback above)")
    return np.frombuffer(data, np.int16).astype(np.float32) / 32768.0, _espeak.sample_rate


def _flite(voice: Voice, text: str, folder: str) -> tuple[np.ndarray, int]:
    fd, tmp = tempfile.mkstemp(prefix=".flite.", suffix=".wav", dir=folder)
    os.close(fd)
    try:
        cmd = [flite_binary() or "flite", "-voice", voice.spec, "-t", text, "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()[:200]}")
        wav, rate = sf.read(tmp, dtype="float32", always_2d=True)
    finally:
        os.unlink(tmp)
    return wav.mean(axis=1), rate


def synthesize(jobs: list[Job], num_workers: int, progress=None) -> None:
    """Runs `jobs` in up to `num_workers` worker processes; `progress.update()` after each."""
    todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    lock = threading.Lock()

    def done() -> None:
        if progress is not None:
            with lock:
                progress.update()

    workers = max(1, min(num_workers, len(jobs)))
    with ThreadPoolExecutor(workers) as threads:
        futures = [threads.submit(_drive_worker, todo, env, done) for _ in range(workers)]
        try:
            for future in futures:
                future.result()
        finally:  # on a failure or Ctrl-C the other workers stop after their current job
            _drain(todo)


def _drive_worker(todo: "queue.SimpleQueue[Job]", env: dict, done) -> None:
    """Starts one worker process and feeds it jobs from `todo` until none are left."""
    cmd = [sys.executable, "-m", "data_prep.builtin_synth"]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            while (job := _next(todo)) is not None:
                proc.stdin.write(job.to_line())
                proc.stdin.flush()
                reply = proc.stdout.readline().strip()
                if reply != "ok":
                    raise RuntimeError(f"synthesis failed for {job.path}: {reply or 'the worker died'}")
                done()
        except BaseException:
            _drain(todo)
            raise
        finally:
            proc.stdin.close()


def _next(todo: "queue.SimpleQueue[Job]") -> Job | None:
    try:
        return todo.get_nowait()
    except queue.Empty:
        return None


def _drain(todo: "queue.SimpleQueue[Job]") -> None:
    while _next(todo) is not None:
        pass


def serve() -> None:
    """Worker loop: one JSON job per stdin line, one reply per job on stdout ("ok" or "error: ...").

    Ctrl-C is left to the parent, which stops feeding jobs; the worker ends when its stdin closes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in sys.stdin:
        try:
            run_job(Job.from_line(line))
            reply = "ok"
        except Exception as e:  # reported to the parent, which stops the build
            traceback.print_exc()
            reply = f"error: {' '.join(str(e).split())[:300]}"
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
