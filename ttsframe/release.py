"""Release bundles: a self-contained folder that `load_release` turns back into a synthesizer.

    release/
      config.yaml          the resolved run config + `release:` (family, format_version, ...)
      ar.safetensors       AR weights          nar.safetensors   NAR weights
      model_config.json    {"family", "ar": ValleConfig fields, "nar": ValleConfig fields}
      vocab.json           the training vocabulary (with its frontend settings)
      codec.json           {"config": codec config fields, "describe": codec.describe(), "fitted"}
      codec.safetensors    the fitted codec state (codecs fitted by ttsframe only)
      README.md            the model card

Loading reads safetensors, JSON and YAML only: no pickle, no training code (no Lightning).
Pretrained codecs (EnCodec, DAC) are not bundled: they load from their library's cache as in
training.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from ttsframe.errors import UserError
from ttsframe.utils.atomic import atomic_path, write_json, write_text

FAMILY = "valle"
FORMAT_VERSION = 1
# Known corpus licenses, for the model card (the weights derive from the training data).
CORPUS_LICENSES = {
    "builtin": "audio synthesised locally with espeak-ng (and flite) voices; no recorded speech",
    "libritts": "LibriTTS: CC BY 4.0", "libritts_r": "LibriTTS-R: CC BY 4.0",
    "vctk": "VCTK 0.92: CC BY 4.0", "ljspeech": "LJSpeech-1.1: public domain",
}


def write_release(out_dir: str | Path, synthesizer, run_cfg: Any = None, card_info: dict | None = None) -> Path:
    """Writes a release folder from a `ValleSynthesizer`.

    Args:
        out_dir: the folder (created; files in it are replaced one by one, atomically).
        synthesizer: a `ttsframe.inference.ValleSynthesizer` (its parts: AR, NAR, codec,
            frontend config, vocabulary).
        run_cfg: the resolved run config (DictConfig or dict) to keep in `config.yaml`.
        card_info: what the model card reports, all optional: `corpus` (name), `data` (the
            prepare stage's summary.json), `training` ({stage: its summary.json}), `eval`
            ({set: metrics.json}), `checkpoints` ({"ar": path, "nar": path}).

    Returns:
        out_dir as a Path.
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = synthesizer
    for name, model, task in (("ar", s.ar, "valle_ar"), ("nar", s.nar, "valle_nar")):
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_path(out_dir / f"{name}.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"family": FAMILY, "task": task})
    write_json(out_dir / "model_config.json", {
        "family": FAMILY, "ar": dataclasses.asdict(s.ar.config), "nar": dataclasses.asdict(s.nar.config)})
    s.vocab.save(out_dir / "vocab.json")
    fitted = bool(getattr(s.codec, "needs_fit", False))
    codec_config = dict(s.codec_config or dataclasses.asdict(s.codec.config), device="auto")
    write_json(out_dir / "codec.json", {"config": codec_config, "describe": s.codec.describe(), "fitted": fitted})
    if fitted:
        s.codec.save(out_dir / "codec.safetensors")
    else:
        (out_dir / "codec.safetensors").unlink(missing_ok=True)  # from an earlier release of another codec
    config = release_config(s, run_cfg)
    write_text(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    write_text(out_dir / "README.md", model_card(config, s, card_info or {}))
    return out_dir


def release_config(synthesizer, run_cfg: Any) -> dict:
    """config.yaml: the run config (resolved), the synthesizer's text config, and `release:`."""
    import ttsframe

    config: dict = {}
    if run_cfg is not None:
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(run_cfg, resolve=True) if OmegaConf.is_config(run_cfg) else dict(run_cfg)
    if synthesizer.text_config is not None:
        config["text"] = dict(synthesizer.text_config)
    if "text" not in config:
        raise ValueError("write_release needs the text config: from the synthesizer or run_cfg")
    config["release"] = {"family": FAMILY, "format_version": FORMAT_VERSION, "ttsframe_version": ttsframe.__version__,
                         "max_prompt_seconds": synthesizer.max_prompt_seconds}
    return config


def load_release(path: str | Path, device: str = "auto"):
    """A `ValleSynthesizer` from a release folder (safetensors + JSON/YAML only, no pickle).

    Args:
        path: the folder `write_release` wrote.
        device: "auto" (CUDA when available), "cpu", "cuda", ...

    Raises:
        UserError: not a release folder, a missing file, or another family / format version.
    """
    from safetensors.torch import load_file

    from ttsframe.codecs import build_codec
    from ttsframe.codecs.base import resolve_device
    from ttsframe.config.schema import TextConfig
    from ttsframe.inference.valle import ValleSynthesizer, build_model, codec_fields
    from ttsframe.models.valle.model import ValleAR, ValleNAR
    from ttsframe.text import Vocabulary, build_frontend

    root = Path(path)
    if not root.is_dir():
        raise UserError(f"release folder {root} not found (make one with the release stage)")
    config = yaml.safe_load(_need(root, "config.yaml").read_text(encoding="utf-8")) or {}
    release = config.get("release") or {}
    if release.get("family") != FAMILY or release.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{root}: a release of family {release.get('family')!r} format "
                        f"{release.get('format_version')!r}; this ttsframe reads {FAMILY!r} format {FORMAT_VERSION}")
    device = resolve_device(device)
    models = json.loads(_need(root, "model_config.json").read_text(encoding="utf-8"))
    ar = build_model(ValleAR, models["ar"], load_file(str(_need(root, "ar.safetensors"))), device)
    nar = build_model(ValleNAR, models["nar"], load_file(str(_need(root, "nar.safetensors"))), device)
    codec_info = json.loads(_need(root, "codec.json").read_text(encoding="utf-8"))
    codec_config = codec_fields(codec_info["config"], device)
    codec = build_codec(codec_config)
    if getattr(codec, "needs_fit", False):
        codec.load(_need(root, "codec.safetensors"))
    text_config = dict(config["text"])
    return ValleSynthesizer(ar, nar, codec, build_frontend(TextConfig(**text_config)),
                            Vocabulary.load(_need(root, "vocab.json")), text_config=text_config,
                            codec_config=codec_config, max_prompt_seconds=release.get("max_prompt_seconds"))


def _need(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise UserError(f"{root} is not a complete release: {name} is missing")
    return path


def model_card(config: dict, synthesizer, info: dict) -> str:
    """README.md of a release: model, training data, training, evaluation, usage, license."""
    s = synthesizer
    name = config.get("recipe", FAMILY)
    codec = s.codec.describe()
    corpus = info.get("corpus") or (config.get("data") or {}).get("corpus", "unknown")
    lines = [f"# {name}: VALL-E zero-shot TTS", "",
             "AR transformer over the first codec codebook + NAR transformer over the others "
             "(Wang et al., 2023), trained with ttsframe.", "", "## Model", ""]
    for label, model in (("AR", s.ar), ("NAR", s.nar)):
        c = model.config
        n_params = sum(p.numel() for p in model.parameters())
        lines.append(f"- {label}: {n_params / 1e6:.2f} M parameters, {c.n_layers} layers, width {c.d_model}, "
                     f"{c.n_heads} heads, FFN {c.ffn_dim}")
    lines += [f"- codec: `{codec.get('name')}`, {codec.get('sample_rate')} Hz, {codec.get('frame_rate'):.2f} frames/s, "
              f"{codec.get('n_codebooks')} codebooks of {codec.get('codebook_size')}",
              f"- text: `{s.text_config.get('frontend') if s.text_config else '?'}` frontend, "
              f"{len(s.vocab)} symbols; prompts cut to {s.max_prompt_seconds} s", "",
              "## Training data", "", f"- corpus: `{corpus}`"]
    for split, row in ((info.get("data") or {}).get("splits") or {}).items():
        lines.append(f"- {split}: {row.get('utterances')} utterances, {row.get('hours')} h, "
                     f"{row.get('speakers')} speakers")
    lines += ["", "## Training", ""]
    for stage, summary in (info.get("training") or {}).items():
        facts = [(summary.get("global_step"), "{} steps"), (summary.get("last_train_loss"), "last train loss {}"),
                 (summary.get("best_val_loss"), "best validation loss {}"),
                 (summary.get("train_seconds"), "{} s of training")]
        lines.append(f"- {stage}: " + ", ".join(text.format(_num(v)) for v, text in facts if v is not None))
    for model, ckpt in (info.get("checkpoints") or {}).items():
        lines.append(f"- {model} weights from `{ckpt}`")
    if info.get("eval"):
        lines += ["", "## Evaluation", ""]
        for split, metrics in info["eval"].items():
            shown = ", ".join(f"{k} {_num(v)}" for k, v in metrics.items() if isinstance(v, (int, float)))
            lines.append(f"- {split}: {shown}")
    lines += ["", "## Usage", "", "```bash",
              'python -m ttsframe synthesize --release DIR --text "Text to say." \\',
              '    --prompt-wav voice.wav --prompt-text "Transcript of voice.wav." --out out.wav', "```", "",
              "```python", "import ttsframe", "from ttsframe.inference import SynthesisItem",
              "from ttsframe.data.audio import load_audio", "from ttsframe.modules.sampling import SamplingOptions", "",
              'tts = ttsframe.load_release("DIR", device="auto")',
              'wav, sr = load_audio("voice.wav")',
              'item = SynthesisItem("Text to say.", wav, sr, "Transcript of voice.wav.")',
              "[out] = tts.synthesize([item], SamplingOptions(top_k=50, seed=0))  # (T,) at tts.sample_rate",
              "```", "", "## License", "",
              "- code: Apache-2.0 (ttsframe).",
              f"- weights: derived from the training data, so bound by its terms: "
              f"{CORPUS_LICENSES.get(corpus, 'see the license of corpus ' + repr(corpus))}.",
              "- zero-shot voice cloning: use prompts only with the speaker's consent, and say that "
              "the speech is synthetic.", ""]
    return "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
