"""Stage `release`: the trained models as a self-contained folder (`ttsframe.release`).

Writes `release/` under the experiment folder from the train stages' best checkpoints. The
family and its options are the synthesize stage's (`stage_family`, `model_options`): VALL-E
`ar_stage`, `nar_stage`; MELLE `model_stage`, `vocoder_stage` (its vocoder goes in too); all
`checkpoint: best|last`, `max_prompt_seconds`. The sampling options are the recipe's synthesize
stage's (what the evaluation scored): the release records them and synthesizes with them by
default. The model card reports the corpus (`data/summary.json`), each train stage's
`summary.json` and any `eval/<set>/metrics.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from ttsframe.pipeline import synthesize
from ttsframe.pipeline.synthesize import load_synthesizer, model_options, stage_family, stage_options
from ttsframe.release import write_release

OUTPUT_DIR = "release"
DEPENDS_ON = ("data", "codec", "text", "model", "trainer", "vocoder")
EVAL_DIR = "eval"  # the evaluate stage's output (its metrics go in the model card)


def reads(cfg: DictConfig, ctx) -> tuple[str, ...]:
    """What the synthesize stage reads (the models), and the evaluation's metrics (for the model card)."""
    return (*synthesize.reads(cfg, ctx), EVAL_DIR)


def run(cfg: DictConfig, ctx) -> dict:
    cls = stage_family(cfg, ctx)
    options = stage_options(ctx, model_options(cls))
    synth, checkpoints = load_synthesizer(cfg, ctx.exp_dir, options, "cpu", cls)
    synth.default_options = synthesis_sampling(cfg, cls)
    write_release(ctx.out_dir, synth, cfg, card_info(cfg, ctx.exp_dir, checkpoints))
    files = sorted(p.name for p in ctx.out_dir.iterdir() if p.is_file())
    print(f"release: {ctx.out_dir}: {', '.join(files)}")
    return {"release": str(ctx.out_dir), "files": files}


def synthesis_sampling(cfg: DictConfig, cls: type):
    """The sampling options of the recipe's synthesize stage (its options that are fields of the
    family's `OPTIONS`; the dataclass's defaults for the rest): what the evaluation scored, and so
    what the release records and synthesizes with by default."""
    import dataclasses

    from ttsframe.errors import ConfigError

    fields = {f.name for f in dataclasses.fields(cls.OPTIONS)}
    stage = next((s for s in cfg.get("stages") or [] if s.kind == "synthesize"), None)
    given = {k: v for k, v in dict((stage.get("options") if stage is not None else None) or {}).items() if k in fields}
    try:
        return cls.OPTIONS(**given)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"stage {stage.name}: {e}") from None


def card_info(cfg: DictConfig, exp_dir: Path, checkpoints: dict[str, Path]) -> dict:
    """What the model card reports, from the files the earlier stages wrote (each optional).

    Args:
        checkpoints: {train stage name: the checkpoint file the release was made from}.
    """
    stages = list(checkpoints)
    return {
        "corpus": cfg.data.corpus if "data" in cfg else None,
        "data": _read(exp_dir / "data" / "summary.json"),
        "training": {s: summary for s in stages if (summary := _read(exp_dir / s / "summary.json"))},
        "eval": {p.parent.name: {k: v for k, v in _read(p).items() if k != "items"}
                 for p in sorted((exp_dir / EVAL_DIR).glob("*/metrics.json"))},
        "checkpoints": {s: str(path.relative_to(exp_dir)) for s, path in checkpoints.items()},
        "init_from": cfg.model.get("init_from") if "model" in cfg else None,
    }


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
