"""S3OnnxTokenizer: CosyVoice's released supervised speech tokenizers, run through onnxruntime.

    speech_tokenizer_v1.onnx   CosyVoice 1        50 Hz, 4096 codes (frame_rate=50, vocab_size=4096)
    speech_tokenizer_v2.onnx   CosyVoice 2 and 3  25 Hz, 6561 codes (3^8 FSQ; the defaults)

Both read what CosyVoice's frontend gives them (`whisper.log_mel_spectrogram(speech, n_mels=128)`):
input 0 "feats" (1, 128, T) float32, Whisper's log-mel of 16 kHz audio with T = N // 160, and input 1
"feats_length" (1,) int32 = T; output 0 holds the ids, (1, T_tok) or (1, 1, T_tok), with
T_tok = ceil(T / s), s = 100 / frame_rate (their encoders subsample with k3-s2-p1 convolutions:
one for v1, two for v2). One clip per call. CosyVoice refuses audio over 30 s; here a longer clip
is cut into 30 s windows of its log-mel, each tokenized alone (no overlap), which keeps T_tok exact.
The files are not shipped: put them where `path` says (`tokenizer.path=...`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ttsframe.codecs.base import full_lengths
from ttsframe.errors import ConfigError, UserError
from ttsframe.eval.asr import file_sha256

SAMPLE_RATE = 16_000
HOP = 160  # samples per log-mel frame (100 Hz)
N_MELS = 128
WINDOW_FRAMES = 3000  # 30 s of log-mel frames per call


class S3OnnxTokenizer:
    """wav (B, T_wav) at 16 kHz -> ids (B, frames_for(T_wav)) at `frame_rate` from an ONNX S3 tokenizer."""

    sample_rate = SAMPLE_RATE

    def __init__(self, path: str | Path, frame_rate: float = 25.0, vocab_size: int = 6561, device: str = "auto"):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise UserError(f"S3 speech tokenizer {self.path} not found: put CosyVoice's speech_tokenizer_v2.onnx "
                            f"(25 Hz, 6561 codes) there, or speech_tokenizer_v1.onnx (50 Hz: also "
                            f"tokenizer.frame_rate=50 tokenizer.vocab_size=4096), or point tokenizer.path=... at it")
        subsample = 100.0 / frame_rate
        if subsample != int(subsample) or subsample < 1:
            raise ConfigError(f"s3_onnx frame_rate must be 100 / an integer (50 for v1, 25 for v2), got {frame_rate}")
        self.subsample, self.frame_rate, self.vocab_size = int(subsample), float(frame_rate), int(vocab_size)
        ort = _onnxruntime()
        self.device, providers = _providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]
        if len(self.inputs) != 2:
            raise UserError(f"{self.path} takes inputs {self.inputs}; an S3 tokenizer takes two, feats (1, 128, T) "
                            f"and feats_length (1,)")
        from faster_whisper.feature_extractor import FeatureExtractor

        self.features = FeatureExtractor(feature_size=N_MELS)
        self.sha256 = file_sha256(self.path)

    def frames_for(self, num_samples: int) -> int:
        return -(-(num_samples // HOP) // self.subsample)  # ceil(T / s)

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wav (B, T_wav), lengths (B,) samples -> ids (B, frames_for(T_wav)) long; row i valid for
        its first frames_for(lengths[i]) ids, 0 after them."""
        ids = torch.zeros(wav.shape[0], self.frames_for(wav.shape[-1]), dtype=torch.long)
        for i, n in enumerate(full_lengths(wav, lengths).tolist()):
            row = self._encode_clip(wav[i, :n].float().cpu().numpy())
            ids[i, : len(row)] = row
        return ids.to(wav.device)

    def _encode_clip(self, wav: np.ndarray) -> torch.Tensor:
        """One clip (N,) -> ids (frames_for(N),), one session run per 30 s window."""
        n_frames = len(wav) // HOP
        if n_frames == 0:
            return torch.zeros(0, dtype=torch.long)
        mel = self.features(wav, padding=0)[None, :, :n_frames].astype(np.float32)  # (1, 128, T)
        parts = []
        for start in range(0, n_frames, WINDOW_FRAMES):
            window = np.ascontiguousarray(mel[:, :, start: start + WINDOW_FRAMES])
            out = self.session.run(None, {self.inputs[0]: window,
                                          self.inputs[1]: np.array([window.shape[2]], dtype=np.int32)})[0]
            parts.append(torch.from_numpy(np.asarray(out).reshape(-1).astype(np.int64)))
        ids, expected = torch.cat(parts), self.frames_for(len(wav))
        if len(ids) != expected or (len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size)):
            span = f" in [{int(ids.min())}, {int(ids.max())}]" if len(ids) else ""
            raise UserError(f"{self.path} gave {len(ids)} ids{span} for {n_frames} log-mel frames, where "
                            f"frame_rate={self.frame_rate:g} and vocab_size={self.vocab_size} mean {expected} ids "
                            f"in [0, {self.vocab_size}); v1 is 50 Hz with 4096 codes, v2 25 Hz with 6561")
        return ids

    def describe(self) -> dict:
        return {"name": "s3_onnx", "path": str(self.path), "frame_rate": self.frame_rate,
                "vocab_size": self.vocab_size, "sha256": self.sha256}


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise UserError("the s3_onnx tokenizer needs onnxruntime: pip install onnxruntime "
                        "(onnxruntime-gpu for CUDA)") from None
    return onnxruntime


def _providers(device: str, available: list[str]) -> tuple[str, list]:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> (the device used, onnxruntime execution providers)."""
    cuda = "CUDAExecutionProvider" in available
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if device == "cpu":
        return device, ["CPUExecutionProvider"]
    kind, _, index = device.partition(":")
    if kind != "cuda" or not (index or "0").isdigit():
        raise ConfigError(f"s3_onnx device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not cuda:
        raise UserError(f"s3_onnx device {device!r}: this onnxruntime has no CUDA provider (it has "
                        f"{', '.join(available)}); pip install onnxruntime-gpu, or use device=cpu")
    return device, [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
