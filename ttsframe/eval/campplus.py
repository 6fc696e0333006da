"""CAM++ speaker embeddings (192-d) from CosyVoice's `campplus.onnx`, through onnxruntime.

CosyVoice 1, 2 and 3 condition their LLM and flow decoder on this model's embedding of the
prompt, and ship it in every pretrained model folder (`pretrained_models/CosyVoice2-0.5B/campplus.onnx`,
a 3D-Speaker CAM++ exported to ONNX). The file is not shipped here: set `eval.speaker.backend=campplus
eval.speaker.model=<path of campplus.onnx>`.

Features are those of CosyVoice's frontend (`CosyVoiceFrontEnd._extract_spk_embedding`): 16 kHz audio
in [-1, 1], `torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80, dither=0, sample_frequency=16000)`
(25 ms povey windows every 10 ms, pre-emphasis 0.97, log mel energies), minus their mean over time;
input 0 takes them as (1, T, 80) float32 and output 0 is the embedding. One clip per run, as there.
A clip shorter than one 25 ms window has no frame and, like an empty or all-zero clip, gets a NaN row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ttsframe.data.audio import clips_at_rate
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.asr import file_sha256
from ttsframe.eval.embedding_rows import has_signal, unit_rows
from ttsframe.eval.provenance import package_version

SAMPLE_RATE = 16000  # CAM++ and its fbank features are 16 kHz
N_MELS = 80
WINDOW = 400  # samples in one 25 ms frame at 16 kHz


def fbank_features(wav: np.ndarray) -> np.ndarray:
    """(N,) float32 at 16 kHz in [-1, 1], N >= WINDOW -> (T, 80) float32 mean-normalised log-mel
    fbank, T = 1 + (N - 400) // 160, exactly as CosyVoice computes it for campplus.onnx."""
    import torchaudio.compliance.kaldi as kaldi

    feat = kaldi.fbank(torch.from_numpy(np.ascontiguousarray(wav))[None], num_mel_bins=N_MELS, dither=0,
                       sample_frequency=SAMPLE_RATE)  # (T, 80)
    return (feat - feat.mean(dim=0, keepdim=True)).numpy().astype(np.float32)


class CamPlusPlusEncoder:
    """CAM++ embeddings (192-d; another width where the file declares one) of CosyVoice's campplus.onnx at
    `model` (a path; required)."""

    dim = 192

    def __init__(self, model: str | None = None, device: str = "auto"):
        if model is None or not Path(model).expanduser().is_file():
            where = f"{model} not found" if model else "needs the path of campplus.onnx"
            raise UserError(f"speaker backend campplus: {where}; CosyVoice ships it in its pretrained model folders "
                            f"(e.g. pretrained_models/CosyVoice2-0.5B/campplus.onnx): copy it to this machine and "
                            f"set `eval.speaker.backend=campplus eval.speaker.model=/path/to/campplus.onnx` "
                            f"(speaker: {{backend: campplus, model: ...}} in an eval config)")
        self.path = str(Path(model).expanduser().resolve())
        self.device, self.session = _session(self.path, device)
        self.input = self.session.get_inputs()[0].name  # by position, as CosyVoice
        width = (self.session.get_outputs()[0].shape or [None])[-1]
        self.dim = width if isinstance(width, int) and width > 0 else CamPlusPlusEncoder.dim  # as the file declares
        self.sha256 = file_sha256(self.path)

    def embed(self, wavs: list[np.ndarray], sample_rate: int) -> np.ndarray:
        """Clips (T_i,) at `sample_rate` -> (N, 192) float32, unit rows (NaN rows for empty, silent
        or sub-25 ms clips)."""
        out = np.full((len(wavs), self.dim), np.nan, np.float32)
        for i, wav in enumerate(clips_at_rate(wavs, sample_rate, SAMPLE_RATE)):
            if has_signal(wav) and len(wav) >= WINDOW:
                out[i] = unit_rows(self._embed_clip(wav)[None])[0]
        return out

    def _embed_clip(self, wav: np.ndarray) -> np.ndarray:
        """(N,) at 16 kHz -> (192,) raw embedding."""
        feats = fbank_features(wav)[None]  # (1, T, 80)
        embedding = np.asarray(self.session.run(None, {self.input: feats})[0], np.float32).reshape(-1)
        if embedding.size != self.dim:
            raise UserError(f"{self.path} gave a {embedding.size}-d output for (1, T, 80) fbank features; "
                            f"CosyVoice's campplus.onnx gives a {self.dim}-d CAM++ embedding")
        return embedding

    def describe(self) -> dict:
        return {"backend": "campplus", "model": "CAM++ (CosyVoice campplus.onnx)", "source": self.path,
                "sha256": self.sha256, "onnxruntime": package_version("onnxruntime"), "device": self.device,
                "features": "kaldi fbank, 80 mel bins, mean-normalised", "sample_rate": SAMPLE_RATE}


def _session(path: str, device: str):
    """(the device used, an onnxruntime InferenceSession of `path`). 'auto' is CUDA when this
    onnxruntime has the CUDA provider and torch sees a GPU, else the CPU (where CosyVoice runs it)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("speaker backend campplus needs onnxruntime: pip install onnxruntime "
                        "(onnxruntime-gpu for CUDA)") from None
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "auto":
        device = "cuda" if has_cuda and torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (kind == "cpu" and index) or not (index or "0").isdigit():
        raise ConfigError(f"speaker backend campplus: device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if kind == "cuda" and not has_cuda:
        raise UserError(f"speaker backend campplus on {device}: this onnxruntime has no CUDA provider; "
                        f"pip install onnxruntime-gpu, or use device=cpu")
    providers = ["CPUExecutionProvider"]
    if kind == "cuda":
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index or 0)}))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    return device, ort.InferenceSession(path, sess_options=options, providers=providers)
