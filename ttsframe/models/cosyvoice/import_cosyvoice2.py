"""The released CosyVoice 2 (CosyVoice2-0.5B) as one of our release folders.

    python -m ttsframe import-cosyvoice2 pretrained_models/CosyVoice2-0.5B --out exp/cosyvoice2_release

reads the downloaded folder as FunAudioLLM publishes it (or the hub id `FunAudioLLM/CosyVoice2-0.5B`
from the local Hugging Face cache; with `--allow-download` or TTSFRAME_HUB_DOWNLOAD=1 the files it
needs are downloaded into that cache) and writes a release that `synthesize
--release`, `load_release` and the demo read like any other (`ttsframe.release`):

    llm.pt                     -> lm.safetensors        (lm_release.py's converter; Qwen2 LM, release layout)
    flow.pt                    -> flow.safetensors      (flow_cosyvoice2.py's converter; CosyVoice2Flow)
    hift.pt                    -> hift.safetensors      (ttsframe.vocoders.hift's converter)
    cosyvoice2.yaml + CosyVoice-BlankEN/config.json     -> the sizes of each part (cosyvoice2_config.py)
    CosyVoice-BlankEN/ (Qwen's tokenizer)   -> text_tokenizer/ + vocab.json (the `bpe` text frontend)
    speech_tokenizer_v2.onnx   -> tokenizer/            (s3_onnx)
    campplus.onnx              -> speaker/              (the speaker embedding of the flow)

The model card says where the weights come from and under which license (Apache-2.0). The sampling
options recorded are CosyVoice 2's (`cosyvoice2_config.released_configs`). Nothing is executed from
the folder: the .pt files are read as tensors only.
"""

from __future__ import annotations

from pathlib import Path

from ttsframe.errors import UserError
from ttsframe.inference.request import DEFAULT_MAX_PROMPT_SECONDS

HUB_ID = "FunAudioLLM/CosyVoice2-0.5B"
SOURCE_URL = f"https://huggingface.co/{HUB_ID}"
CODE_URL = "https://github.com/FunAudioLLM/CosyVoice"
PAPER = "Du et al., 2024, CosyVoice 2: Scalable Streaming Speech Synthesis with Large Language Models"
# file -> what it is (named in the error when it is missing)
NEEDED = {"cosyvoice2.yaml": "the sizes of the parts", "CosyVoice-BlankEN": "Qwen's tokenizer and config",
          "llm.pt": "the LM", "flow.pt": "the flow decoder", "hift.pt": "the HiFT vocoder",
          "speech_tokenizer_v2.onnx": "the speech tokenizer (prompt speech -> tokens)",
          "campplus.onnx": "the speaker encoder (prompt speaker embedding of the flow)"}


# What a download fetches: the parts above, not the repo's ONNX/TensorRT exports nor the Qwen weights
# in CosyVoice-BlankEN (llm.pt holds the LM's).
DOWNLOAD_PATTERNS = ["cosyvoice2.yaml", "llm.pt", "flow.pt", "hift.pt", "speech_tokenizer_v2.onnx", "campplus.onnx",
                     "CosyVoice-BlankEN/*.json", "CosyVoice-BlankEN/*.txt"]


def source_folder(source: str | Path, allow_download: bool | None = None, cache_dir: str | Path | None = None) -> Path:
    """The local folder of `source`: a folder, or a hub id (`FunAudioLLM/CosyVoice2-0.5B[@revision]`) in the
    local Hugging Face cache (`ttsframe.release.hub_folder`: downloaded only when `allow_download`, or
    None and TTSFRAME_HUB_DOWNLOAD=1; then only DOWNLOAD_PATTERNS)."""
    from ttsframe.release import hub_folder

    return hub_folder(source, allow_download, cache_dir, "CosyVoice 2 checkpoint", DOWNLOAD_PATTERNS)


def check_folder(root: Path) -> None:
    """Raises UserError naming every file of a CosyVoice 2 folder that `root` lacks."""
    if not root.is_dir():
        raise UserError(f"{root}: no such folder (the CosyVoice2-0.5B download: `hf download FunAudioLLM/CosyVoice2-0.5B "
                        f"--local-dir {root}`)")
    missing = [f"{name} ({what})" for name, what in NEEDED.items() if not (root / name).exists()]
    if missing:
        raise UserError(f"{root} is not a complete CosyVoice 2 folder; missing: {', '.join(missing)}. Download them "
                        f"from {SOURCE_URL}")


def released_synthesizer(root: str | Path, device: str = "cpu"):
    """A `CosyVoiceSynthesizer` of the parts in a CosyVoice 2 folder, with CosyVoice 2's sampling options."""
    from omegaconf import OmegaConf

    from ttsframe.config import load_group
    from ttsframe.config.schema import TextConfig
    from ttsframe.models.cosyvoice.cosyvoice2_config import QWEN_DIR, released_configs
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import load_flow_checkpoint
    from ttsframe.models.cosyvoice.lm_release import load_llm_checkpoint
    from ttsframe.models.cosyvoice.synthesizer import CosyVoiceSynthesizer, speaker_of
    from ttsframe.text import build_frontend
    from ttsframe.tokenizers.s3_onnx import S3OnnxTokenizer
    from ttsframe.vocoders import build_vocoder
    from ttsframe.vocoders.hift import load_hift_checkpoint

    root = Path(root)
    check_folder(root)
    configs = released_configs(root)
    vocoder = build_vocoder("hift", configs.mel, generator=load_hift_checkpoint(root / "hift.pt", configs.hift))
    vocoder.source = f"{root.name}/hift.pt"
    text = {**OmegaConf.to_container(load_group("text", "bpe_cosyvoice2")), "tokenizer": str(root / QWEN_DIR)}
    frontend = build_frontend(TextConfig(**text))
    synth = CosyVoiceSynthesizer(
        load_llm_checkpoint(root / "llm.pt", configs.lm), load_flow_checkpoint(root / "flow.pt", configs.flow),
        S3OnnxTokenizer(root / "speech_tokenizer_v2.onnx", configs.flow.token_rate, configs.lm.n_speech, device),
        speaker_of("campplus", str(root / "campplus.onnx")), configs.mel, frontend, frontend.vocabulary(), vocoder,
        text_config=text, max_prompt_seconds=DEFAULT_MAX_PROMPT_SECONDS)
    synth.default_options = configs.sampling
    return synth


def card_origin(source: str) -> dict:
    """The model card's account of weights made elsewhere (`ttsframe.release.model_card`'s `origin`)."""
    return {
        "title": "CosyVoice 2 (CosyVoice2-0.5B), converted",
        "summary": ("FunAudioLLM's CosyVoice 2: a Qwen2.5-0.5B text-speech LM over 25 Hz supervised speech tokens, a "
                    "chunk-aware causal flow-matching decoder to log-mel and the HiFT vocoder "
                    f"({PAPER}), converted to a ttsframe release without retraining."),
        "lines": [f"- weights: FunAudioLLM's CosyVoice2-0.5B, {SOURCE_URL} (code: {CODE_URL}), read from `{source}`",
                  "- converted by `python -m ttsframe import-cosyvoice2`: llm.pt, flow.pt and hift.pt mapped key by key "
                  "onto ttsframe's modules (their equivalence with CosyVoice's own code is tested); "
                  "speech_tokenizer_v2.onnx, campplus.onnx and the Qwen tokenizer (CosyVoice-BlankEN) are copied as they are",
                  "- trained by FunAudioLLM on their own data (not released; ~167k hours of Chinese, English, Japanese "
                  "and Korean speech per the paper)"],
        "license": f"Apache-2.0, as FunAudioLLM releases CosyVoice 2 ({SOURCE_URL}); keep its notice when you share them",
        "hub_license": "apache-2.0",
        "sampling": "CosyVoice 2's own inference settings (its cosyvoice2.yaml and code)",
    }


def import_cosyvoice2(source: str | Path, out_dir: str | Path, allow_download: bool | None = None,
                      cache_dir: str | Path | None = None) -> Path:
    """Writes the release folder `out_dir` from the CosyVoice 2 folder or hub id `source` (see
    `source_folder`); returns `out_dir`."""
    from ttsframe.release import write_release

    synth = released_synthesizer(source_folder(source, allow_download, cache_dir), "cpu")
    run_cfg = {"recipe": "CosyVoice2-0.5B", "source": str(source)}
    return write_release(out_dir, synth, run_cfg, {"corpus": "CosyVoice 2's own (not released)",
                                                   "origin": card_origin(str(source))})
