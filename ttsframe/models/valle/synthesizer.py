"""Zero-shot VALL-E synthesis: prompt wav + prompt text + target text -> wav.

`ValleSynthesizer` holds the five parts synthesis needs (AR, NAR, codec, text frontend,
vocabulary) and runs a batch of items through them:

    prompt text + target text -> symbols -> ids        (frontend, vocabulary)
    prompt wav -> codec rate, cut to max_prompt_seconds -> codes (K, Tp)     (codec)
    ids + prompt codes -> target codes (K, T)          (AR then NAR, `synthesize_codes`)
    target codes -> wav                                (codec.decode)

Build it from training outputs with `from_checkpoints`, or from a release folder with
`from_release` (= `ttsframe.load_release`). Nothing here imports Lightning.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttsframe.codecs import build_codec, to_dataclass
from ttsframe.codecs.base import encode_utterances, resolve_device
from ttsframe.config.schema import TextConfig
from ttsframe.data.audio import resample
from ttsframe.errors import UserError
from ttsframe.inference.checkpoint import codec_fields, load_vocabulary, need_file, read_checkpoint, save_weights
from ttsframe.inference.prompt import prepare_prompts
from ttsframe.inference.request import (DEFAULT_MAX_PROMPT_SECONDS, MIN_DECODE_FRAMES, PROMPT_BATCH_SECONDS,
                                       SynthesisItem)
from ttsframe.inference.text import check_frontend, encode_symbols, text_token_ids
from ttsframe.inference.timing import PartTimer
from ttsframe.models.valle.generate import synthesize_codes
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.modules.sampling import SamplingOptions
from ttsframe.text import Vocabulary, build_frontend

class ValleSynthesizer:
    """AR + NAR + codec + frontend + vocabulary, ready to synthesize.

    Args:
        ar, nar: trained models (moved to eval mode; they stay on their device).
        codec: the codec the models were trained on (fitted, if it needs fitting).
        frontend: the text frontend that built the vocabulary.
        vocab: the training vocabulary.
        text_config: TextConfig fields of the frontend (kept for releases).
        codec_config: the codec's config fields (kept for releases).
        max_prompt_seconds: longer prompts are cut (with their transcript); None: never.
    """

    FAMILY = "valle"
    OPTIONS = SamplingOptions  # the sampling options dataclass of `synthesize`
    CHECKPOINT_STAGES = {"ar_stage": "train_ar", "nar_stage": "train_nar"}  # from_checkpoints' first arguments
    USES_VOCODER = False
    TITLE = "VALL-E zero-shot TTS"
    SUMMARY = ("AR transformer over the first codec codebook + NAR transformer over the others "
               "(Wang et al., 2023), trained with ttsframe.")
    CARD_OPTIONS = ("ttsframe.modules.sampling", "SamplingOptions(top_k=50, seed=0)")

    def __init__(self, ar: ValleAR, nar: ValleNAR, codec, frontend, vocab: Vocabulary, *,
                 text_config: dict | None = None, codec_config: dict | None = None,
                 max_prompt_seconds: float | None = DEFAULT_MAX_PROMPT_SECONDS):
        check_parts(ar.config, nar.config, codec, vocab)
        check_frontend(vocab, frontend)
        self.ar, self.nar = ar.eval(), nar.eval()
        self.codec, self.frontend, self.vocab = codec, frontend, vocab
        self.text_config, self.codec_config = text_config, codec_config
        self.max_prompt_seconds = max_prompt_seconds
        self.default_options = SamplingOptions()  # what `synthesize` uses when given none (a release's own)

    @property
    def device(self) -> torch.device:
        return next(self.ar.parameters()).device

    @property
    def sample_rate(self) -> int:
        """Hz of the returned audio (the codec's)."""
        return self.codec.sample_rate

    @torch.inference_mode()
    def synthesize(self, items: list[SynthesisItem], options: SamplingOptions | None = None) -> list[np.ndarray]:
        """Synthesizes a batch; the seed in `options` (None: `default_options`) fixes the result for this batch.

        Returns:
            One (T_i,) float32 waveform per item at `sample_rate`.

        Raises:
            UserError: a text with symbols outside the vocabulary, an empty text or prompt.
        """
        if not items:
            return []
        options = self.default_options if options is None else options
        timer = PartTimer()
        with timer("frontend"):
            text_tokens = self.text_tokens([item.text for item in items])
        with timer("prompt"):
            prompt_tokens, prompt_codes = self.encode_prompts(items)
        codes = synthesize_codes(self.ar, self.nar, text_tokens, prompt_tokens, prompt_codes, options, timer)
        with timer("decode"):
            wavs = self.decode(codes)
        self.last_timings = timer.seconds
        return wavs

    @torch.inference_mode()
    def resynthesize(self, wavs: list[np.ndarray], sample_rate: int, options=None) -> list[np.ndarray]:
        """Recordings -> codec codes -> audio at `self.sample_rate`: the ceiling of this synthesizer
        (what its codec alone keeps of real speech), scored by the evaluation stage. `options` is
        unused: the codec's decoder does not sample."""
        rate = self.codec.sample_rate
        audio = [resample(np.asarray(w, dtype=np.float32).reshape(-1), int(sample_rate), rate) for w in wavs]
        return self.decode(encode_utterances(self.codec, audio, PROMPT_BATCH_SECONDS))

    def text_tokens(self, texts: list[str]) -> list[torch.Tensor]:
        """Target texts -> per text (L_i,) ids; fails on symbols outside the vocabulary."""
        return text_token_ids(self.frontend, self.vocab, texts)

    def encode_prompts(self, items: list[SynthesisItem]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Prompts -> per item transcript ids (Lp_i,) and codes (K, Tp_i), cut to max_prompt_seconds.

        The transcript ids end with a word boundary (when the vocabulary has one), since the
        target text follows them as a new word.
        """
        wavs, tokens = prepare_prompts(items, self.frontend, self.vocab, self.codec.sample_rate,
                                       self.max_prompt_seconds, self.codec.frames_for, 1)
        codes = encode_utterances(self.codec, wavs, PROMPT_BATCH_SECONDS)  # (K, Tp_i) each
        return tokens, codes

    def encode_symbols(self, symbols: list[str], text: str) -> torch.Tensor:
        """Symbols (L,) -> ids (L,) long; UserError naming the symbols the model never saw."""
        return encode_symbols(self.vocab, symbols, text)

    def decode(self, codes: list[torch.Tensor]) -> list[np.ndarray]:
        """Per item (K, T_i) codes -> (T_i * samples per frame,) float32, decoded as one batch.

        Rows are padded by repeating their last frame, to at least MIN_DECODE_FRAMES frames
        (Griffin-Lim fails on a few frames shorter than its FFT), and trimmed after decoding.
        """
        longest = max(c.shape[-1] for c in codes)
        if longest == 0:
            return [np.zeros(0, dtype=np.float32) for _ in codes]
        batch = torch.zeros(len(codes), codes[0].shape[0], max(longest, MIN_DECODE_FRAMES), dtype=torch.long)
        for i, c in enumerate(codes):  # batch (B, K, T)
            if c.shape[-1]:
                batch[i] = torch.cat([c.cpu(), c[:, -1:].cpu().expand(-1, batch.shape[-1] - c.shape[-1])], dim=1)
        wavs = self.codec.decode(batch).float().cpu().numpy()  # (B, T * hop)
        per_frame = round(self.codec.sample_rate / self.codec.frame_rate)
        return [np.ascontiguousarray(w[: c.shape[-1] * per_frame]) for w, c in zip(wavs, codes)]

    @classmethod
    def from_checkpoints(cls, ar_ckpt: str | Path, nar_ckpt: str | Path, shard_dir: str | Path, codec_cfg: Any,
                         text_cfg: Any, device: str = "auto",
                         max_prompt_seconds: float | None = DEFAULT_MAX_PROMPT_SECONDS) -> "ValleSynthesizer":
        """From the train stages' checkpoints and the tokenize stage's folder.

        Args:
            ar_ckpt, nar_ckpt: `.ckpt` files of the AR and NAR train stages (read with
                `weights_only=True`).
            shard_dir: the tokenize stage's folder (`vocab.json`, `codec.safetensors` for a
                fitted codec, `train.index.json`).
            codec_cfg, text_cfg: the run's `codec` and `text` configs (dataclass, dict or DictConfig).
            device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        """
        device = resolve_device(device)
        shard_dir = Path(shard_dir)
        codec_config = codec_fields(codec_cfg, device)
        codec = build_codec(codec_config)
        if getattr(codec, "needs_fit", False):
            codec.load(shard_dir / "codec.safetensors")
        check_shard_codec(shard_dir, codec)
        text_config = dataclasses.asdict(to_dataclass(TextConfig, text_cfg, "text"))
        vocab = load_vocabulary(shard_dir)
        ar_state = read_checkpoint(ar_ckpt, "valle", "valle_ar")
        nar_state = read_checkpoint(nar_ckpt, "valle", "valle_nar")
        ar = build_model(ValleAR, ar_state.config, ar_state.state_dict, device)
        nar = build_model(ValleNAR, nar_state.config, nar_state.state_dict, device)
        return cls(ar, nar, codec, build_frontend(TextConfig(**text_config)), vocab,
                   text_config=text_config, codec_config=codec_config, max_prompt_seconds=max_prompt_seconds)

    @classmethod
    def from_release(cls, path: str | Path, device: str = "auto") -> "ValleSynthesizer":
        """From a release folder (see `ttsframe.release`)."""
        from ttsframe.release import release_of

        return release_of(cls, path, device)

    # -- release parts (ttsframe.release writes config.yaml and the card) -------------------------
    def write_release_files(self, out_dir: Path) -> None:
        """ar/nar.safetensors, model_config.json, vocab.json, codec.json (+ codec.safetensors when fitted)."""
        from ttsframe.utils.atomic import write_json

        for name, model, task in (("ar", self.ar, "valle_ar"), ("nar", self.nar, "valle_nar")):
            save_weights(out_dir / f"{name}.safetensors", model, self.FAMILY, task)
        write_json(out_dir / "model_config.json", {"family": self.FAMILY, "ar": dataclasses.asdict(self.ar.config),
                                                   "nar": dataclasses.asdict(self.nar.config)})
        self.vocab.save(out_dir / "vocab.json")
        fitted = bool(getattr(self.codec, "needs_fit", False))
        codec_config = dict(self.codec_config or dataclasses.asdict(self.codec.config), device="auto")
        write_json(out_dir / "codec.json",
                   {"config": codec_config, "describe": self.codec.describe(), "fitted": fitted})
        if fitted:
            self.codec.save(out_dir / "codec.safetensors")
        else:
            (out_dir / "codec.safetensors").unlink(missing_ok=True)  # from an earlier release of another codec

    @classmethod
    def read_release(cls, root: Path, config: dict, device: str) -> "ValleSynthesizer":
        """The synthesizer of a release folder (`write_release_files` + config.yaml)."""
        from safetensors.torch import load_file

        device = resolve_device(device)
        models = json.loads(need_file(root, "model_config.json").read_text(encoding="utf-8"))
        ar = build_model(ValleAR, models["ar"], load_file(str(need_file(root, "ar.safetensors"))), device)
        nar = build_model(ValleNAR, models["nar"], load_file(str(need_file(root, "nar.safetensors"))), device)
        codec_info = json.loads(need_file(root, "codec.json").read_text(encoding="utf-8"))
        codec_config = codec_fields(codec_info["config"], device)
        codec = build_codec(codec_config)
        if getattr(codec, "needs_fit", False):
            codec.load(need_file(root, "codec.safetensors"))
        text_config = dict(config["text"])
        release = config.get("release") or {}
        vocab = Vocabulary.load(need_file(root, "vocab.json"))
        return cls(ar, nar, codec, build_frontend(TextConfig(**text_config)), vocab, text_config=text_config,
                   codec_config=codec_config, max_prompt_seconds=release.get("max_prompt_seconds"))

    def card_lines(self) -> list[str]:
        """The `## Model` lines of the model card."""
        lines = []
        for label, model in (("AR", self.ar), ("NAR", self.nar)):
            c = model.config
            n_params = sum(p.numel() for p in model.parameters())
            lines.append(f"- {label}: {n_params / 1e6:.2f} M parameters, {c.n_layers} layers, width {c.d_model}, "
                         f"{c.n_heads} heads, FFN {c.ffn_dim}")
        codec = self.codec.describe()
        return [*lines,
                f"- codec: `{codec.get('name')}`, {codec.get('sample_rate')} Hz, {codec.get('frame_rate'):.2f} "
                f"frames/s, {codec.get('n_codebooks')} codebooks of {codec.get('codebook_size')}",
                f"- text: `{self.text_config.get('frontend') if self.text_config else '?'}` frontend, "
                f"{len(self.vocab)} symbols; prompts cut to {self.max_prompt_seconds} s"]


def build_model(kind: type, config: dict, state_dict: dict[str, torch.Tensor], device) -> torch.nn.Module:
    """`kind(ValleConfig(**config))` with `state_dict` loaded (strictly), in eval mode on `device`."""
    model = kind(ValleConfig(**config))
    model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()


def check_parts(ar: ValleConfig, nar: ValleConfig, codec, vocab: Vocabulary) -> None:
    """Raises UserError when the models, the codec and the vocabulary do not belong together."""
    expected = {"vocab_size": len(vocab), "n_codebooks": codec.n_codebooks, "codebook_size": codec.codebook_size}
    for name, config in (("AR", ar), ("NAR", nar)):
        wrong = [f"{k}={getattr(config, k)} (expected {v})" for k, v in expected.items() if getattr(config, k) != v]
        if wrong:
            raise UserError(f"the {name} model does not match the codec/vocabulary: {', '.join(wrong)}; "
                            "were they trained on these shards?")


def check_shard_codec(shard_dir: Path, codec) -> None:
    """Raises UserError if the shards (train index) were encoded with another codec setting
    (the vocoder, which only decodes, may differ)."""
    index = shard_dir / "train.index.json"
    if not index.is_file():
        return
    recorded = json.loads(index.read_text(encoding="utf-8")).get("codec")
    now = json.loads(json.dumps(codec.describe()))  # as JSON stores it (tuples -> lists)
    if isinstance(recorded, dict) and recorded != now:
        diff = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k) and k != "vocoder")
        if diff:
            raise UserError(f"{index}: the shards were encoded with another codec setting ({', '.join(diff)} "
                            "differ); synthesize with the codec config of the tokenize stage")
