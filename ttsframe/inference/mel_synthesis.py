"""What the synthesizers of the mel-frame families (MELLE, DiTAR) share: one model over the shards'
log-mel, the mel configuration, a vocoder, the text frontend and its vocabulary.

`MelFrameSynthesizer` is that synthesizer less the family's part; a family's class (one level
below it, in the family's folder) sets the class attributes of the synthesizer interface
(`ttsframe.inference`) plus `TASK` and `NAME`, and implements `build_model` (config + weights ->
its model), `generate_mels` (its decoding), `prompt_frames` (the fewest prompt frames: its step),
`model_card_line` and `from_release` (`ttsframe.release.release_of`, which this module may not
import). The rest is here:

    prompt text + target text -> ids                     (frontend, vocabulary)
    prompt wav -> mel rate, cut -> log-mel (Tp, M)       (MelCodec.encode)
    ids + prompt log-mel -> target log-mel (T, M)        (the family's `generate_mels`)
    target log-mel -> wav                                (the vocoder: `vocode_mels`)

and the release parts: model.safetensors, model_config.json {"family", "model"}, mel.json
(MelConfig fields), vocab.json, vocoder.json {"name", ...} (+ the vocoder's generator.safetensors
/ .json unless it is the universal one). Nothing here imports Lightning or a family.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttsframe.codecs import to_dataclass
from ttsframe.codecs.base import encode_utterances, resolve_device
from ttsframe.codecs.mel import MelConfig, check_mel_compatible
from ttsframe.config.schema import TextConfig
from ttsframe.data.audio import resample
from ttsframe.errors import UserError
from ttsframe.inference.checkpoint import codec_fields, load_vocabulary, need_file, read_checkpoint, save_weights
from ttsframe.inference.prompt import prepare_prompts
from ttsframe.inference.request import DEFAULT_MAX_PROMPT_SECONDS, PROMPT_BATCH_SECONDS, SynthesisItem
from ttsframe.inference.text import check_frontend, encode_symbols, text_token_ids
from ttsframe.inference.timing import PartTimer
from ttsframe.text import Vocabulary, build_frontend
from ttsframe.vocoders import Vocoder
from ttsframe.vocoders.bundle import (describe_vocoder, load_vocoder, save_vocoder, vocode_mels, vocoder_card,
                                      vocoder_features)


# -- checks ----------------------------------------------------------------------------------------
def check_mel_model(config: Any, mel_config: MelConfig, vocab: Vocabulary, name: str) -> None:
    """Raises UserError when the model config (`vocab_size`, `n_mels`), the mel configuration and the
    vocabulary do not belong together; `name` is the model's ("MELLE")."""
    wrong = [f"{k}={getattr(config, k)} (expected {v})" for k, v in
             (("vocab_size", len(vocab)), ("n_mels", mel_config.n_mels)) if getattr(config, k) != v]
    if wrong:
        raise UserError(f"the {name} model does not match the mel configuration/vocabulary: {', '.join(wrong)}; "
                        "was it trained on these shards?")


def check_shard_mel(shard_dir: Path, mel_config: MelConfig) -> None:
    """Raises ConfigError if the shards (train index) hold log-mel of another mel configuration."""
    index = Path(shard_dir) / "train.index.json"
    if not index.is_file():
        return
    recorded = (json.loads(index.read_text(encoding="utf-8")).get("codec") or {}).get("mel")
    if recorded is not None:
        check_mel_compatible(recorded, mel_config, f"{index} (the shards, first) vs the codec config (second)")


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], device) -> torch.nn.Module:
    """`model` with `state_dict` loaded (strictly), in eval mode on `device`."""
    model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()


class MelFrameSynthesizer:
    """A model over log-mel frames + mel features + vocoder + frontend + vocabulary, ready to synthesize.

    Args:
        model: the trained model (moved to eval mode; it stays on its device); its `config` has
            `vocab_size` and `n_mels`.
        mel_config: the mel configuration of its training shards.
        frontend: the text frontend that built the vocabulary.
        vocab: the training vocabulary.
        vocoder: log-mel -> wav; None: `default_vocoder(mel_config)`. Moved to the model's device.
        text_config: TextConfig fields of the frontend (kept for releases).
        max_prompt_seconds: longer prompts are cut (with their transcript); None: never.

    Raises:
        UserError: the model, the mel configuration, the vocoder and the vocabulary do not fit.
    """

    FAMILY: str  # the family and the train task whose checkpoints it reads ("melle", "melle")
    TASK: str
    NAME: str  # the model, in messages ("MELLE")
    OPTIONS: type  # the family's frozen sampling-options dataclass
    USES_VOCODER = True

    def __init__(self, model: torch.nn.Module, mel_config: MelConfig | dict, frontend, vocab: Vocabulary,
                 vocoder: Vocoder | None = None, *, text_config: dict | None = None,
                 max_prompt_seconds: float | None = DEFAULT_MAX_PROMPT_SECONDS):
        self.mel_config = MelConfig.from_any(mel_config)
        check_mel_model(model.config, self.mel_config, vocab, self.NAME)
        check_frontend(vocab, frontend)
        self.model = model.eval()
        self.vocoder, self.features = vocoder_features(self.mel_config, vocoder, self.device)
        self.frontend, self.vocab = frontend, vocab
        self.text_config, self.max_prompt_seconds = text_config, max_prompt_seconds
        self.default_options = self.OPTIONS()  # what `synthesize` uses when given none (a release's own)

    # -- the family's part ---------------------------------------------------------------------------
    @staticmethod
    def build_model(config: dict, state_dict: dict[str, torch.Tensor], device) -> torch.nn.Module:
        """The family's model from its config fields and weights, in eval mode on `device`."""
        raise NotImplementedError

    def generate_mels(self, text_tokens: list[torch.Tensor], prompt_tokens: list[torch.Tensor],
                      prompt_mels: list[torch.Tensor], options) -> list[torch.Tensor]:
        """Per item target ids (L_i,), prompt ids (Lp_i,) and prompt log-mel (Tp_i, M) -> target
        log-mel (T_i, M), with the family's sampling `options`."""
        raise NotImplementedError

    @property
    def prompt_frames(self) -> int:
        """The fewest frames a usable prompt has (the model's step)."""
        raise NotImplementedError

    def model_card_line(self) -> str:
        """The model card's line on the model."""
        raise NotImplementedError

    # -- synthesis -----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def sample_rate(self) -> int:
        """Hz of the returned audio (the mel configuration's)."""
        return self.mel_config.sample_rate

    @torch.inference_mode()
    def synthesize(self, items: list[SynthesisItem], options=None) -> list[np.ndarray]:
        """Synthesizes a batch; the seed in `options` (None: `default_options`) fixes the result for this batch.

        Returns:
            One (T_i,) float32 waveform per item at `sample_rate` (the target speech only).

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
            prompt_tokens, prompt_mels = self.encode_prompts(items)
        with timer(self.FAMILY):
            mels = self.generate_mels(text_tokens, prompt_tokens, prompt_mels, options)  # (T_i, M) each
        with timer("vocoder"):
            wavs = self.vocode(mels)
        self.last_timings = timer.seconds
        return wavs

    @torch.inference_mode()
    def resynthesize(self, wavs: list[np.ndarray], sample_rate: int, options=None) -> list[np.ndarray]:
        """Recordings -> log-mel -> vocoder audio at `self.sample_rate`: the ceiling of this
        synthesizer (what its vocoder makes of real mels), scored by the evaluation stage.
        `options` is unused: nothing here samples."""
        audio = [resample(np.asarray(w, dtype=np.float32).reshape(-1), int(sample_rate), self.sample_rate)
                 for w in wavs]
        mels = encode_utterances(self.features, audio, PROMPT_BATCH_SECONDS)  # (M, T_i) each
        return self.vocode([m.T.contiguous() for m in mels])

    def text_tokens(self, texts: list[str]) -> list[torch.Tensor]:
        """Target texts -> per text (L_i,) ids; fails on symbols outside the vocabulary."""
        return text_token_ids(self.frontend, self.vocab, texts)

    def encode_prompts(self, items: list[SynthesisItem]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Prompts -> per item transcript ids (Lp_i,) and log-mel (Tp_i, M), cut to max_prompt_seconds.

        The transcript ids end with a word boundary (when the vocabulary has one), since the
        target text follows them as a new word. A prompt needs `prompt_frames` frames.
        """
        wavs, tokens = prepare_prompts(items, self.frontend, self.vocab, self.sample_rate, self.max_prompt_seconds,
                                       self.features.frames_for, self.prompt_frames)
        mels = encode_utterances(self.features, wavs, PROMPT_BATCH_SECONDS)  # (M, Tp_i) each
        return tokens, [m.T.contiguous() for m in mels]

    def encode_symbols(self, symbols: list[str], text: str) -> torch.Tensor:
        """Symbols (L,) -> ids (L,) long; UserError naming the symbols the model never saw."""
        return encode_symbols(self.vocab, symbols, text)

    def vocode(self, mels: list[torch.Tensor]) -> list[np.ndarray]:
        """Per item (T_i, M) log-mel -> (T_i * hop,) float32, vocoded as one batch (`vocode_mels`)."""
        return vocode_mels(self.features, self.mel_config, mels)

    # -- building ------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoints(cls, checkpoint: str | Path, shard_dir: str | Path, codec_cfg: Any, text_cfg: Any,
                         vocoder: Vocoder | None = None, device: str = "auto",
                         max_prompt_seconds: float | None = DEFAULT_MAX_PROMPT_SECONDS):
        """From the train stage's checkpoint and the tokenize stage's folder.

        Args:
            checkpoint: `.ckpt` file of the family's train stage (read with `weights_only=True`).
            shard_dir: the tokenize stage's folder (`vocab.json`, `train.index.json`).
            codec_cfg, text_cfg: the run's `codec` (must be `mel`) and `text` configs.
            vocoder: None: `default_vocoder`.
            device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        """
        device = resolve_device(device)
        shard_dir = Path(shard_dir)
        fields = codec_fields(codec_cfg)
        if fields.get("name") != "mel":
            raise UserError(f"{cls.NAME} models log-mel frames: the codec must be `mel`, not `{fields.get('name')}`")
        mel_config = MelConfig.from_any(fields["mel"])
        check_shard_mel(shard_dir, mel_config)
        text_config = dataclasses.asdict(to_dataclass(TextConfig, text_cfg, "text"))
        vocab = load_vocabulary(shard_dir)
        state = read_checkpoint(checkpoint, cls.FAMILY, cls.TASK)
        model = cls.build_model(state.config, state.state_dict, device)
        return cls(model, mel_config, build_frontend(TextConfig(**text_config)), vocab,
                   vocoder, text_config=text_config, max_prompt_seconds=max_prompt_seconds)

    # -- release parts (ttsframe.release writes config.yaml and the card) -----------------------------
    def write_release_files(self, out_dir: Path) -> None:
        """model.safetensors, model_config.json, mel.json, vocab.json, vocoder.json (+ the
        vocoder's generator.safetensors / .json unless it is the universal one)."""
        from ttsframe.utils.atomic import write_json

        save_weights(out_dir / "model.safetensors", self.model, self.FAMILY, self.TASK)
        write_json(out_dir / "model_config.json", {"family": self.FAMILY,
                                                   "model": dataclasses.asdict(self.model.config)})
        write_json(out_dir / "mel.json", self.mel_config.to_dict())
        self.vocab.save(out_dir / "vocab.json")
        write_json(out_dir / "vocoder.json", save_vocoder(self.vocoder, self.mel_config, out_dir))

    @classmethod
    def read_release(cls, root: Path, config: dict, device: str):
        """The synthesizer of a release folder (`write_release_files` + config.yaml)."""
        from safetensors.torch import load_file

        device = resolve_device(device)
        models = json.loads(need_file(root, "model_config.json").read_text(encoding="utf-8"))
        model = cls.build_model(models["model"], load_file(str(need_file(root, "model.safetensors"))), device)
        mel_config = MelConfig.from_any(json.loads(need_file(root, "mel.json").read_text(encoding="utf-8")))
        description = json.loads(need_file(root, "vocoder.json").read_text(encoding="utf-8"))
        text_config = dict(config["text"])
        release = config.get("release") or {}
        return cls(model, mel_config, build_frontend(TextConfig(**text_config)),
                   Vocabulary.load(need_file(root, "vocab.json")), load_vocoder(description, mel_config, root),
                   text_config=text_config, max_prompt_seconds=release.get("max_prompt_seconds"))

    def card_lines(self) -> list[str]:
        """The `## Model` lines of the model card."""
        m = self.mel_config
        frontend = self.text_config.get("frontend") if self.text_config else "?"
        return [self.model_card_line(),
                f"- mel: {m.n_mels} bands, {m.sample_rate} Hz, n_fft {m.n_fft}, hop {m.hop_length} "
                f"({m.frame_rate:.2f} frames/s), fmax {m.fmax}",
                f"- vocoder: {vocoder_card(describe_vocoder(self.vocoder))}",
                f"- text: `{frontend}` frontend, {len(self.vocab)} symbols; prompts cut to {self.max_prompt_seconds} s"]

    def vocoder_description(self) -> dict:
        """What the vocoder is (see `describe_vocoder`), e.g. for resume stamps."""
        return describe_vocoder(self.vocoder)
