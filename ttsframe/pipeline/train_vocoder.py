"""Stage `train_vocoder`: a vocoder for the recipe's mel configuration, trained on its manifests.

Reads `exp/<recipe>/data/{train,dev}.jsonl` (audio, not shards: the vocoder needs waveforms) and
the `vocoder` config group; the mel configuration is the codec's (`codec.mel`; MelConfig()
without one). Writes under `exp/<recipe>/<stage name>/`:

- `checkpoints/{last,best}.ckpt` and `logs/` (HiFi-GAN training; best = lowest dev mel L1),
- `generator.safetensors` + `generator.json`: the generator without weight norm, with its
  HifiGanConfig and MelConfig, loadable anywhere with `HifiGanVocoder.from_file` or
  `vocoder.checkpoint=<that file>` (one trained vocoder per mel configuration, reusable by every
  recipe that shares it),
- `summary.json`: iterations, losses, dev mel L1, what was exported.

Modes, by the vocoder config: `max_steps > 0` trains (from `init_from`: universal, null or a
generator file); `max_steps: 0` or a `checkpoint` only validates and exports that generator (the
universal one by default); `name: griffin_lim` only validates (nothing to export).

Training reuses the train stage's machinery: `build_trainer`, the logger, `last.ckpt`/`best.ckpt`,
resume from the newest checkpoint, `--force`, SLURM and local DDP launches (`strategy=ddp`;
`ddp_spawn` cannot pickle the weight-norm parametrizations and fsdp is refused). Settings: the
`trainer` group says where and how (devices, precision unless `vocoder.precision` is set, logger,
validation/checkpoint intervals, workers); `vocoder` says what and how long. Exact resume: the
segment stream is indexed by batch number (`ttsframe.vocoders.data`), so the stream restarts at
the `DataPosition` batch count directly, without replaying; `DataPosition` also re-seeds torch
before each batch as in the train stage. Lightning counts two optimizer steps per iteration, so
the Trainer gets 2 x max_steps and 2 x checkpoint interval (validation counts batches: unchanged).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from ttsframe.codecs.mel import MelConfig, MelSpectrogram, check_mel_compatible
from ttsframe.config.training import TrainerConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.pipeline.train import launcher_name, workers_run_this_stage
from ttsframe.training import slurm
from ttsframe.training.callbacks import TrainSummary
from ttsframe.training.loggers import build_logger
from ttsframe.training.resume import DataPosition, find_resume_checkpoint, read_checkpoint_meta, set_aside
from ttsframe.training.threads import training_threads
from ttsframe.training.trainer import build_trainer, world_size
from ttsframe.utils.atomic import write_json
from ttsframe.vocoders.config import build_from_config, check_config
from ttsframe.vocoders.data import VocoderData, WholeUtterances, read_splits
from ttsframe.vocoders.hifigan import (HifiGanGenerator, load_generator_file, load_pretrained, preset_config,
                                       save_generator)
from ttsframe.vocoders.losses import mel_l1_loss
from ttsframe.vocoders.task import VocoderTask

OUTPUT_DIR = None  # one folder per stage, named after it
DEPENDS_ON = ("data", "codec", "vocoder", "trainer")
LAUNCHES_JOBS = True
MANIFEST_DIR = "data"  # the prepare stage's output
READS = (MANIFEST_DIR,)
GENERATOR_FILE = "generator.safetensors"
STEPS_PER_ITERATION = 2  # Lightning's global_step counts the D and the G optimizer steps


def stage_mel_config(cfg: DictConfig) -> MelConfig:
    """The recipe's mel configuration: the codec's `mel`, else the default (universal HiFi-GAN's)."""
    if "codec" in cfg and "mel" in cfg.codec:
        return MelConfig.from_any(OmegaConf.to_container(cfg.codec.mel, resolve=True))
    return MelConfig()


def run(cfg: DictConfig, ctx) -> dict:
    if ctx.options:
        raise ConfigError(f"stage {ctx.name}: train_vocoder takes no options (got {sorted(ctx.options)}); "
                          "its settings are the `vocoder` config group")
    if "vocoder" not in cfg:
        raise ConfigError(f"stage {ctx.name}: the recipe needs a `vocoder` config "
                          "(defaults: vocoder: hifigan_universal)")
    v = cfg.vocoder
    check_config(v)
    mel = stage_mel_config(cfg)
    trains = not (v.name == "griffin_lim" or v.checkpoint is not None or v.max_steps == 0)
    if ctx.force and trains and (old := set_aside(ctx.out_dir)):
        print(f"train_vocoder: --force: earlier checkpoints moved to {old}; starting from scratch")
    if launcher_name(cfg) == "slurm":  # a job; one task when it trains nothing (the data may not be there yet)
        return slurm.launch(cfg, ctx.index, ctx.name, ctx.out_dir, ctx.after, None if trains else slurm.one_task(cfg))
    return train(cfg, ctx, mel) if trains else pretrained(cfg, ctx, mel)


# ---- no training: validate (and export) a finished vocoder -----------------------------------------

def pretrained(cfg: DictConfig, ctx, mel: MelConfig) -> dict:
    v = cfg.vocoder
    vocoder = build_from_config(v, mel)
    _, dev = read_splits(ctx.exp_dir / MANIFEST_DIR, v.num_val_utterances)
    dev_set = WholeUtterances(dev, mel.sample_rate, mel.hop_length, v.max_val_seconds)
    summary = {"vocoder": v.name, "source": getattr(vocoder, "source", v.name), "trained": False,
               **validate(vocoder, dev_set)}
    if v.name == "hifigan":
        summary["exported"] = str(export(vocoder.generator, mel, ctx.out_dir, source=summary["source"]))
    write_json(ctx.out_dir / "summary.json", summary)
    print(f"train_vocoder: {summary['source']}: dev mel L1 {summary['val_mel_l1']:.4f} "
          f"(RTF {summary['val_rtf']:.3f}) -> {summary.get('exported', 'nothing to export')}")
    return summary


@torch.inference_mode()
def validate(vocoder, utterances: WholeUtterances) -> dict:
    """Mean log-mel L1 between the dev utterances and their vocoded copies, and the real-time factor."""
    features = MelSpectrogram(vocoder.mel_config)
    losses, seconds, audio = [], 0.0, 0.0
    for wav in utterances:
        mel = features(wav)  # (1, M, T)
        began = time.perf_counter()
        out = vocoder(mel)  # (1, T * hop)
        seconds += time.perf_counter() - began
        audio += wav.shape[-1] / vocoder.sample_rate
        losses.append(float(mel_l1_loss(mel, features(out.cpu()))))
    if not losses:
        return {"val_mel_l1": float("nan"), "val_rtf": float("nan"), "val_utterances": 0}
    return {"val_mel_l1": sum(losses) / len(losses), "val_rtf": seconds / audio, "val_utterances": len(losses)}


def export(generator: HifiGanGenerator, mel: MelConfig, stage_dir: Path, **info) -> Path:
    path = Path(stage_dir) / GENERATOR_FILE
    save_generator(generator, mel, path, **info)
    return path


# ---- training ----------------------------------------------------------------------------------------

def initial_generator(init_from: str | None, config_name: str, mel: MelConfig) -> HifiGanGenerator | None:
    """The generator training starts from (with weight norm): the universal one, a file, or None (random)."""
    if init_from is None:
        return None
    if init_from == "universal":
        if config_name != "universal_v1":
            raise ConfigError(f"vocoder.init_from=universal needs vocoder.preset=universal_v1, not {config_name}")
        check_mel_compatible(MelConfig(), mel,
                             "vocoder.init_from=universal (first) vs the recipe's mel config (second)")
        return load_pretrained()
    path = Path(init_from)
    if path.suffix == ".safetensors":
        generator, own_mel = load_generator_file(path)
        check_mel_compatible(own_mel, mel, f"vocoder.init_from={path} (first) vs the recipe's mel config (second)")
        if generator.config != preset_config(config_name):
            raise ConfigError(f"vocoder.init_from={path} holds a generator of other sizes than "
                              f"vocoder.preset={config_name}: {generator.config}")
        return generator.apply_weight_norm()
    return load_pretrained(path, preset_config(config_name))


def trainer_config(cfg: DictConfig) -> DictConfig:
    """The recipe's trainer settings, adapted to GAN training with manual optimisation."""
    t = OmegaConf.merge(OmegaConf.structured(TrainerConfig), cfg.trainer if "trainer" in cfg else {})
    v = cfg.vocoder
    if t.strategy in ("fsdp", "ddp_spawn"):  # ddp_spawn pickles the module; weight-norm parametrizations can't be
        raise ConfigError(f"train_vocoder: trainer.strategy={t.strategy} is not supported; use ddp (or auto)")
    t.max_steps = STEPS_PER_ITERATION * v.max_steps
    t.val_check_interval = min(int(t.val_check_interval), v.max_steps)  # counted in batches = iterations
    t.checkpoint_every_n_steps = STEPS_PER_ITERATION * int(t.checkpoint_every_n_steps)  # last.ckpt also at the end
    if t.snapshot_every_n_steps:
        t.snapshot_every_n_steps = STEPS_PER_ITERATION * int(t.snapshot_every_n_steps)
    t.gradient_clip_val = None  # manual optimisation: Lightning cannot clip
    t.accumulate_grad_batches = 1
    t.find_unused_parameters = True  # each backward reaches only one optimizer's parameters
    if v.precision is not None:
        t.precision = v.precision
    return t


def build_task(cfg: DictConfig, mel: MelConfig) -> VocoderTask:
    v = cfg.vocoder
    keys = ("lr", "betas", "weight_decay", "lr_decay", "lr_decay_every", "lambda_mel", "lambda_fm", "loss_fmax")
    optim = {k: OmegaConf.to_container(v[k]) if k == "betas" else v[k] for k in keys}
    return VocoderTask(vocoder_config=preset_config(v.preset).to_dict(), mel_config=mel.to_dict(),
                       discriminator=v.discriminator, optim=optim, num_audio_samples=v.num_audio_samples,
                       init_from=v.init_from)


def resume_checkpoint(stage_dir: Path, module: VocoderTask) -> tuple[Path | None, int]:
    """The checkpoint to resume from and its iteration, after checking it holds the same vocoder."""
    path = find_resume_checkpoint(stage_dir)
    if path is None:
        return None, 0
    meta = read_checkpoint_meta(path)
    hp = meta["hyper_parameters"]
    for key in ("vocoder_config", "mel_config", "discriminator"):
        if hp.get(key) != module.hparams[key]:
            raise UserError(f"{path} holds another vocoder ({key} differs) than the config asks for; run with --force "
                            f"to start over (the old checkpoints are kept in {stage_dir}/checkpoints.<n>/)")
    iteration = meta["global_step"] // STEPS_PER_ITERATION
    print(f"train_vocoder: resuming from {path} (iteration {iteration})")
    return path, iteration


def train(cfg: DictConfig, ctx, mel: MelConfig) -> dict:
    v, t = cfg.vocoder, trainer_config(cfg)
    seed = int(t.seed if t.seed is not None else cfg.seed)
    L.seed_everything(seed, workers=True, verbose=False)
    module = build_task(cfg, mel)
    checkpoint, iteration = resume_checkpoint(ctx.out_dir, module)
    summary_path = ctx.out_dir / "summary.json"
    if checkpoint is None and (start := initial_generator(v.init_from, v.preset, mel)) is not None:
        module.generator.load_state_dict(start.state_dict())
    if checkpoint is not None and iteration >= v.max_steps:
        print(f"train_vocoder: {checkpoint} is at iteration {iteration} >= vocoder.max_steps={v.max_steps}")
        if not summary_path.is_file() or not (ctx.out_dir / GENERATOR_FILE).is_file():
            module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"])
            return finish(ctx, module, mel, summary_path, {"global_step": iteration * STEPS_PER_ITERATION})
        return json.loads(summary_path.read_text())
    position = DataPosition(seed)
    data = VocoderData(ctx.exp_dir / MANIFEST_DIR, mel.sample_rate, mel.hop_length, v.segment_size, v.batch_size,
                       seed, num_workers=t.num_workers, num_val_utterances=v.num_val_utterances,
                       max_val_seconds=v.max_val_seconds, position=position)
    logger = build_logger(t.logger, ctx.out_dir, t.wandb_project, f"{cfg.recipe}/{ctx.name}")
    trainer = build_trainer(t, ctx.out_dir, logger, [position, TrainSummary(summary_path)])
    print(f"train_vocoder: {ctx.name}: HiFi-GAN {v.preset} (init {v.init_from}), {world_size(t)} process(es), "
          f"{v.max_steps} iterations -> {ctx.out_dir}")
    with workers_run_this_stage(cfg, ctx), training_threads(t.threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resuming
        # Checkpoints are taken after both updates of an iteration, which is what resuming needs.
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
        trainer.fit(module, datamodule=data, ckpt_path=checkpoint)
        if trainer.is_global_zero:
            finish(ctx, module, mel, summary_path, json.loads(summary_path.read_text()))
        trainer.strategy.barrier("train_vocoder export")  # other ranks return rank 0's summary
    return json.loads(summary_path.read_text())


def finish(ctx, module: VocoderTask, mel: MelConfig, summary_path: Path, summary: dict) -> dict:
    """Exports the final generator and completes the summary."""
    iterations = summary["global_step"] // STEPS_PER_ITERATION
    exported = export(module.generator, mel, ctx.out_dir, source=f"{ctx.out_dir} iteration {iterations}")
    summary = {**summary, "vocoder": "hifigan", "trained": True, "iterations": iterations, "exported": str(exported)}
    write_json(summary_path, summary)
    print(f"train_vocoder: {iterations} iterations; generator exported to {exported}")
    return summary
