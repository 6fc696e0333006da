"""Zero-shot CosyVoice synthesis: prompt wav + prompt text + target text -> speech tokens -> log-mel -> wav.

`CosyVoiceSynthesizer` holds the parts (speech LM, flow decoder, speech tokenizer, speaker
encoder, mel features, vocoder, text frontend, vocabulary) and runs a batch of items through them:

    prompt text + target text -> symbols -> ids                  (frontend, vocabulary)
    prompt wav (cut to max_prompt_seconds) -> speech tokens      (the speech tokenizer, 16 kHz)
                                           -> log-mel (Tp, M)    (MelCodec, the vocoder's mel)
                                           -> speaker embedding  (Resemblyzer by default)
    ids + prompt tokens (+ embedding) -> target speech tokens    (`lm_generate.generate`, KV cache)
    target tokens + prompt tokens/mel + embedding -> log-mel     (`CosyVoiceFlow.sample`, Euler + CFG)
    log-mel -> wav                                               (the vocoder)

`resynthesize` is the family's ceiling: the recording's own speech tokens through the flow and
the vocoder (what the tokens keep of the words and the voice). `stream` (streaming.py) yields
audio while the LM is still decoding. Build it from training outputs with `from_checkpoints`,
or from a release folder with `from_release` (= `ttsframe.load_release`). No Lightning here.

The flow is our DiT (`CosyVoiceFlow`) or CosyVoice 2's released architecture (`CosyVoice2Flow`,
`flow_build.build_flow` picks by its config); the text frontend may be a BPE tokenizer with its
own vocabulary (the `bpe` frontend: Qwen's, for CosyVoice 2's LM); the vocoder may be HiFT. A
release carries every file these need: the speech tokenizer's (its ONNX file too), the speaker
model's (campplus.onnx), the BPE tokenizer's (`text_tokenizer/`), each hard-linked where it can be.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttsframe.codecs import to_dataclass
from ttsframe.codecs.base import encode_utterances, resolve_device
from ttsframe.codecs.mel import MelConfig
from ttsframe.config.schema import TextConfig
from ttsframe.data.audio import clips_at_rate, resample
from ttsframe.errors import UserError
from ttsframe.inference.checkpoint import codec_fields, load_vocabulary, need_file, read_checkpoint, save_weights
from ttsframe.inference.prompt import prepare_prompts
from ttsframe.inference.request import DEFAULT_MAX_PROMPT_SECONDS, PROMPT_BATCH_SECONDS, SynthesisItem
from ttsframe.inference.text import check_frontend, text_token_ids
from ttsframe.inference.timing import PartTimer
from ttsframe.models.cosyvoice.flow_build import build_flow
from ttsframe.models.cosyvoice.lm import LMConfig, SpeechLM
from ttsframe.models.cosyvoice.lm_generate import generate
from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions
from ttsframe.modules.packing import pad_rows
from ttsframe.text import Vocabulary, build_frontend
from ttsframe.vocoders import Vocoder
from ttsframe.vocoders.bundle import (describe_vocoder, load_vocoder, save_vocoder, vocode_mels, vocoder_card,
                                      vocoder_features)

TOKENIZER_DIR = "tokenizer"  # the speech tokenizer's files inside a release
SPEAKER_DIR = "speaker"  # the speaker encoder's model file inside a release (campplus.onnx)
TEXT_TOKENIZER_DIR = "text_tokenizer"  # a BPE text frontend's tokenizer files inside a release


class CosyVoiceSynthesizer:
    """Speech LM + flow + speech tokenizer + speaker encoder + vocoder, ready to synthesize.

    Args:
        lm, flow: trained `SpeechLM` and flow (`CosyVoiceFlow` or `CosyVoice2Flow`; moved to eval
            mode, on one device).
        tokenizer: the `SpeechTokenizer` whose ids both were trained on.
        speaker: (encoder, name, model) of an `ttsframe.eval.speaker` backend (`speaker_of`), or
            None for an LM and flow without speaker embedding.
        mel_config: the mel configuration of the training shards (and of the vocoder).
        frontend, vocab: the text frontend and the training vocabulary.
        vocoder: log-mel -> wav; None: the universal HiFi-GAN (Griffin-Lim where it does not fit).
        text_config: TextConfig fields of the frontend (kept for releases).
        max_prompt_seconds: longer prompts are cut (with their transcript); None: never.
    """

    FAMILY = "cosyvoice"
    OPTIONS = CosyVoiceSamplingOptions
    CHECKPOINT_STAGES = {"lm_stage": "train_lm", "flow_stage": "train_flow"}
    USES_VOCODER = True
    TITLE = "CosyVoice zero-shot TTS"
    SUMMARY = ("A text-speech language model over supervised speech tokens, a chunk-aware conditional "
               "flow-matching decoder from tokens to log-mel and a vocoder (Du et al., 2024), trained from "
               "scratch with ttsframe, speech tokenizer included.")
    CARD_OPTIONS = ("ttsframe.models.cosyvoice.sampling", "CosyVoiceSamplingOptions(seed=0)")

    def __init__(self, lm: SpeechLM, flow: torch.nn.Module, tokenizer, speaker: tuple | None,
                 mel_config: MelConfig | dict, frontend, vocab: Vocabulary, vocoder: Vocoder | None = None, *,
                 text_config: dict | None = None, max_prompt_seconds: float | None = DEFAULT_MAX_PROMPT_SECONDS):
        self.mel_config = MelConfig.from_any(mel_config)
        check_parts(lm.config, flow.config, tokenizer, vocab, self.mel_config)
        check_frontend(vocab, frontend)
        self.lm, self.flow, self.tokenizer = lm.eval(), flow.eval(), tokenizer
        needs_speaker = lm.config.spk_dim > 0 or flow.config.spk_dim > 0
        if needs_speaker and speaker is None:
            raise UserError("this CosyVoice model takes speaker embeddings: give the speaker encoder it was trained with")
        self.speaker_encoder, self.speaker_name, self.speaker_model = speaker if speaker is not None else (None, None, None)
        self.vocoder, self.features = vocoder_features(self.mel_config, vocoder, self.device)
        self.frontend, self.vocab = frontend, vocab
        self.text_config, self.max_prompt_seconds = text_config, max_prompt_seconds
        self.default_options = CosyVoiceSamplingOptions()  # what `synthesize` uses when given none (a release's own)

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    # -- synthesis ------------------------------------------------------------------------------
    @torch.inference_mode()
    def synthesize(self, items: list[SynthesisItem],
                   options: CosyVoiceSamplingOptions | None = None) -> list[np.ndarray]:
        """Synthesizes a batch; the seed in `options` (None: `default_options`) fixes the result.
        Returns (T_i,) float32 at `sample_rate`."""
        if not items:
            return []
        options = self.default_options if options is None else options
        timer = PartTimer()
        with timer("frontend"):
            text = text_token_ids(self.frontend, self.vocab, [item.text for item in items])
        with timer("prompt"):
            prompt = self.encode_prompts(items)
        with timer("lm"):
            tokens = self.generate_tokens(text, prompt, options)
        with timer("flow"):
            mels = self.decode_tokens(tokens, prompt, options)
        with timer("vocoder"):
            wavs = vocode_mels(self.features, self.mel_config, mels)
        self.last_timings = timer.seconds
        return wavs

    def encode_prompts(self, items: list[SynthesisItem]) -> dict[str, Any]:
        """Prompts -> {"text": ids (Lp_i,) each, "speech": tokens (P_i,) each, "mel": (F_i, M) each,
        "spk": (B, E) or None}, from the prompt audio cut to max_prompt_seconds."""
        wavs, text = prepare_prompts(items, self.frontend, self.vocab, self.sample_rate, self.max_prompt_seconds,
                                     self.features.frames_for, 2)
        mels = [m.T.contiguous() for m in encode_utterances(self.features, wavs, PROMPT_BATCH_SECONDS)]
        speech = self.speech_tokens(wavs)
        ratio = getattr(self.flow.config, "ratio", None)
        if ratio:  # CosyVoice2Flow: ratio frames a token, both cut to match (as CosyVoice 2's frontend does)
            kept = [min(len(s), len(m) // ratio) for s, m in zip(speech, mels)]
            speech, mels = [s[:n] for s, n in zip(speech, kept)], [m[:ratio * n] for m, n in zip(mels, kept)]
        return {"text": text, "mel": mels, "speech": speech, "spk": self.speaker_embeddings(wavs)}

    def speech_tokens(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """(T_i,) audio at `sample_rate` -> the tokenizer's ids (S_i,) each."""
        clips = clips_at_rate(wavs, self.sample_rate, self.tokenizer.sample_rate)
        padded, lengths = pad_rows([torch.from_numpy(c) for c in clips], 0.0)
        ids = self.tokenizer.encode(padded, lengths)  # (B, S)
        return [ids[i, : self.tokenizer.frames_for(n)].cpu() for i, n in enumerate(lengths.tolist())]

    def speaker_embeddings(self, wavs: list[np.ndarray]) -> torch.Tensor | None:
        if self.speaker_encoder is None:
            return None
        rows = self.speaker_encoder.embed(list(wavs), self.sample_rate)  # (B, E)
        return torch.from_numpy(np.nan_to_num(rows)).float().to(self.device)

    def generate_tokens(self, text: list[torch.Tensor], prompt: dict, options: CosyVoiceSamplingOptions
                        ) -> list[torch.Tensor]:
        """Target speech tokens (T_i,) per item from the LM, continuing the prompt's."""
        full = [torch.cat([p, t]) for p, t in zip(prompt["text"], text)]
        ids, lengths = pad_rows(full, 0)
        speech, speech_lengths = pad_rows(prompt["speech"], 0)
        spk = prompt["spk"] if self.lm.config.spk_dim else None
        return generate(self.lm, ids.to(self.device), lengths, spk, speech.to(self.device), speech_lengths,
                        options.lm_options(), prompt_text_lengths=torch.tensor([len(p) for p in prompt["text"]]))

    def decode_tokens(self, tokens: list[torch.Tensor], prompt: dict, options: CosyVoiceSamplingOptions,
                      mask_mode: str = "full") -> list[torch.Tensor]:
        """Speech tokens (T_i,) per item -> target log-mel (F_i, M) per item through the flow."""
        ids, lengths = pad_rows(tokens, 0)
        p_ids, p_lengths = pad_rows(prompt["speech"], 0)
        p_mel, p_frames = pad_rows(prompt["mel"], 0.0)
        mel, mel_lengths = self.flow.sample(
            ids.to(self.device), lengths, self.flow_speaker(prompt["spk"], len(tokens)), p_ids.to(self.device),
            p_mel.to(self.device), prompt_token_lengths=p_lengths, prompt_mel_lengths=p_frames,
            n_steps=options.flow_steps, cfg_scale=options.cfg_scale, schedule=options.flow_schedule,
            mask_mode=mask_mode, temperature=options.flow_temperature, seed=options.seed)
        return [mel[i, :n].cpu() for i, n in enumerate(mel_lengths.tolist())]

    def flow_speaker(self, spk: torch.Tensor | None, batch: int) -> torch.Tensor:
        if spk is not None:
            return spk
        return torch.zeros(batch, self.flow.config.spk_dim, device=self.device)

    @torch.inference_mode()
    def resynthesize(self, wavs: list[np.ndarray], sample_rate: int,
                     options: CosyVoiceSamplingOptions | None = None) -> list[np.ndarray]:
        """Recordings -> their own speech tokens -> flow (their own speaker embedding, no prompt
        mel; the flow fields of `options`, `default_options` if None) -> vocoder, at `self.sample_rate`:
        the ceiling of the tokenizer + flow + vocoder."""
        options = self.default_options if options is None else options
        audio = [resample(np.asarray(w, dtype=np.float32).reshape(-1), int(sample_rate), self.sample_rate)
                 for w in wavs]
        empty = [torch.zeros(0, dtype=torch.long) for _ in audio]
        prompt = {"speech": empty, "mel": [torch.zeros(0, self.mel_config.n_mels) for _ in audio],
                  "spk": self.speaker_embeddings(audio)}
        mels = self.decode_tokens(self.speech_tokens(audio), prompt, options)
        return vocode_mels(self.features, self.mel_config, mels)

    def stream(self, item: SynthesisItem, options: CosyVoiceSamplingOptions | None = None,
               chunk_tokens: int | None = None, stats=None):
        """Yields (T_k,) float32 audio chunks of one item while the LM decodes (see streaming.py;
        `stats`: a `StreamStats` to fill with the first-chunk latency)."""
        from ttsframe.models.cosyvoice.streaming import stream_item

        return stream_item(self, item, self.default_options if options is None else options, chunk_tokens, stats)

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_checkpoints(cls, lm_ckpt: str | Path, flow_ckpt: str | Path, shard_dir: str | Path, codec_cfg: Any,
                         text_cfg: Any, vocoder: Vocoder | None = None, device: str = "auto",
                         max_prompt_seconds: float | None = DEFAULT_MAX_PROMPT_SECONDS) -> "CosyVoiceSynthesizer":
        """From the LM and flow train stages' checkpoints and the tokenize stage's folder, whose
        index names the speech tokenizer and the speaker encoder the shards were made with."""
        from ttsframe.tokenizers.build import load_described

        device = resolve_device(device)
        shard_dir = Path(shard_dir)
        fields = codec_fields(codec_cfg)
        if fields.get("name") != "mel":
            raise UserError(f"CosyVoice's flow makes log-mel frames: the codec must be `mel`, not `{fields.get('name')}`")
        index = json.loads(need_file(shard_dir, "train.index.json").read_text(encoding="utf-8"))
        if not index.get("speech_tokenizer"):
            raise UserError(f"{shard_dir}: the shards hold no speech tokens; run the cosyvoice tokenize stage")
        text_config = dataclasses.asdict(to_dataclass(TextConfig, text_cfg, "text"))
        lm_state, flow_state = read_checkpoint(lm_ckpt, "cosyvoice", "cosyvoice_lm"), \
            read_checkpoint(flow_ckpt, "cosyvoice", "cosyvoice_flow")
        lm, flow = build_models(lm_state.config, lm_state.state_dict, flow_state.config, flow_state.state_dict, device)
        return cls(lm, flow, load_described(index["speech_tokenizer"], device),
                   speaker_of(index.get("speaker_encoder"), index.get("speaker_model")),
                   fields["mel"], build_frontend(TextConfig(**text_config)), load_vocabulary(shard_dir), vocoder,
                   text_config=text_config, max_prompt_seconds=max_prompt_seconds)

    @classmethod
    def from_release(cls, path: str | Path, device: str = "auto") -> "CosyVoiceSynthesizer":
        from ttsframe.release import release_of

        return release_of(cls, path, device)

    # -- release parts ---------------------------------------------------------------------------
    def write_release_files(self, out_dir: Path) -> None:
        """lm.safetensors, flow.safetensors, model_config.json, mel.json, vocab.json, vocoder.json (+ the
        vocoder's weights), speaker.json (+ its model file in speaker/), tokenizer.json (+ the speech
        tokenizer's files in tokenizer/) and a BPE frontend's tokenizer in text_tokenizer/."""
        from ttsframe.utils.atomic import place_file, write_json

        save_weights(out_dir / "lm.safetensors", self.lm, self.FAMILY, "cosyvoice_lm")
        save_weights(out_dir / "flow.safetensors", self.flow, self.FAMILY, "cosyvoice_flow")
        write_json(out_dir / "model_config.json", {"family": self.FAMILY, "lm": dataclasses.asdict(self.lm.config),
                                                   "flow": dataclasses.asdict(self.flow.config)})
        write_json(out_dir / "mel.json", self.mel_config.to_dict())
        self.vocab.save(out_dir / "vocab.json")
        write_json(out_dir / "vocoder.json", save_vocoder(self.vocoder, self.mel_config, out_dir))
        model = self.speaker_model
        if model and Path(model).is_file():  # a model file (campplus.onnx) travels with the release
            model = str(Path(SPEAKER_DIR) / Path(model).name)
            place_file(self.speaker_model, out_dir / model)
        write_json(out_dir / "speaker.json", {"speaker_encoder": self.speaker_name, "speaker_model": model})
        described = self.tokenizer.describe()
        folder = getattr(self.tokenizer, "folder", None)
        if folder is not None:  # a tokenizer trained here travels with the release
            (out_dir / TOKENIZER_DIR).mkdir(exist_ok=True)
            for name in ("tokenizer.safetensors", "tokenizer.json"):
                shutil.copyfile(Path(folder) / name, out_dir / TOKENIZER_DIR / name)
        elif described.get("path"):  # an ONNX tokenizer (s3_onnx) travels too, its path relative to the release
            described["path"] = str(Path(TOKENIZER_DIR) / Path(described["path"]).name)
            place_file(self.tokenizer.path, out_dir / described["path"])
        write_json(out_dir / "tokenizer.json", described)
        if hasattr(self.frontend, "save"):  # a BPE tokenizer's files
            self.frontend.save(out_dir / TEXT_TOKENIZER_DIR)

    @classmethod
    def read_release(cls, root: Path, config: dict, device: str) -> "CosyVoiceSynthesizer":
        from safetensors.torch import load_file

        from ttsframe.tokenizers.build import load_described

        device = resolve_device(device)
        models = json.loads(need_file(root, "model_config.json").read_text(encoding="utf-8"))
        lm, flow = build_models(models["lm"], load_file(str(need_file(root, "lm.safetensors"))),
                                models["flow"], load_file(str(need_file(root, "flow.safetensors"))), device)
        mel_config = MelConfig.from_any(json.loads(need_file(root, "mel.json").read_text(encoding="utf-8")))
        described = json.loads(need_file(root, "tokenizer.json").read_text(encoding="utf-8"))
        if described.get("path") and not Path(described["path"]).is_absolute():  # in the release
            described["path"] = str(need_file(root, described["path"]))
        elif (root / TOKENIZER_DIR).is_dir():
            described = {**described, "folder": str(root / TOKENIZER_DIR)}
        speaker = json.loads(need_file(root, "speaker.json").read_text(encoding="utf-8"))
        model = speaker.get("speaker_model")
        if model and not Path(model).is_absolute() and (root / model).is_file():
            model = str(root / model)
        text_config = dict(config["text"])
        if (root / TEXT_TOKENIZER_DIR).is_dir():  # the release's own copy of a BPE tokenizer
            text_config["tokenizer"] = str(root / TEXT_TOKENIZER_DIR)
        return cls(lm, flow, load_described(described, device), speaker_of(speaker["speaker_encoder"], model),
                   mel_config, build_frontend(TextConfig(**text_config)), Vocabulary.load(need_file(root, "vocab.json")),
                   load_vocoder(json.loads(need_file(root, "vocoder.json").read_text(encoding="utf-8")), mel_config, root),
                   text_config=text_config, max_prompt_seconds=(config.get("release") or {}).get("max_prompt_seconds"))

    def card_lines(self) -> list[str]:
        """The `## Model` lines of the model card."""
        lines = []
        for label, model in (("LM", self.lm), ("flow", self.flow)):
            c = model.config
            n_params = sum(p.numel() for p in model.parameters())
            layers = getattr(c, "n_layers", None) or (f"{c.encoder_layers} + {c.estimator_layers}" if hasattr(
                c, "estimator_layers") else f"{c.encoder_layers} + {c.up_layers} encoder + {c.mid_stages + 2} U-Net")
            kind = f"{type(model).__name__}, " if label == "flow" else ""
            lines.append(f"- {label}: {kind}{n_params / 1e6:.2f} M parameters, {layers} layers, "
                         f"width {getattr(c, 'd_model', None) or c.dim}")
        t = self.tokenizer.describe()
        return [*lines,
                f"- speech tokenizer: `{t.get('name')}`, {t.get('vocab_size')} tokens at {t.get('frame_rate')} Hz",
                f"- speaker embedding: {self.speaker_name or 'none'}",
                f"- vocoder: {vocoder_card(describe_vocoder(self.vocoder))}",
                f"- text: `{self.text_config.get('frontend') if self.text_config else '?'}` frontend; prompts cut to "
                f"{self.max_prompt_seconds} s"]

    def vocoder_description(self) -> dict:
        return describe_vocoder(self.vocoder)


def build_models(lm_config: dict, lm_state: dict, flow_config: dict, flow_state: dict, device
                 ) -> tuple[SpeechLM, torch.nn.Module]:
    lm = SpeechLM(LMConfig(**lm_config))
    lm.load_state_dict(lm_state, strict=True)
    flow = build_flow(flow_config)
    flow.load_state_dict(flow_state, strict=True)
    return lm.to(device).eval(), flow.to(device).eval()


def speaker_of(name: str | None, model: str | None = None) -> tuple | None:
    """(encoder, name, model) of an `ttsframe.eval.speaker` backend (`model`: its weights file,
    e.g. campplus.onnx; None: the backend's default), or None."""
    if not name:
        return None
    from ttsframe.eval.speaker import build_speaker_encoder

    return build_speaker_encoder(name, model), name, model


def check_parts(lm: LMConfig, flow, tokenizer, vocab: Vocabulary, mel: MelConfig) -> None:
    """Raises UserError when the LM, the flow (config), the tokenizer, the vocabulary and the mel do not
    fit. A BPE tokenizer's vocabulary (no specials) may be smaller than the LM's text table (Qwen's
    embedding has spare rows)."""
    n_text = len(vocab) if vocab.specials or lm.n_text < len(vocab) else lm.n_text
    wrong = [f"{what}={got} (expected {want})" for what, got, want in (
        ("LM n_text", lm.n_text, n_text), ("LM n_speech", lm.n_speech, tokenizer.vocab_size),
        ("flow n_speech", flow.n_speech, tokenizer.vocab_size), ("flow n_mels", flow.n_mels, mel.n_mels),
        ("flow token_rate", round(flow.token_rate, 3), round(tokenizer.frame_rate, 3))) if got != want]
    if wrong:
        raise UserError(f"the CosyVoice parts do not belong together: {', '.join(wrong)}; "
                        "were the LM and the flow trained on these shards?")
