"""Stage `train`: one model (the stage's `task:` option) trained on the tokenized shards.

Writes under `exp/<recipe>/<stage name>/`: `checkpoints/{last,best}.ckpt`, `logs/`,
`summary.json`, `curves.json` (losses and accuracies against the step, `ttsframe.training.curves`;
the evaluation report draws them) and `config.yaml` (by the runner). Running the stage again after it stopped
resumes from the newest checkpoint, exactly (see `ttsframe.training.resume`); a finished stage
whose `trainer.max_steps` was raised continues to the new budget; `--force` sets the old
checkpoints aside (`checkpoints.<n>/`) and starts over. With `launcher=slurm` the stage is
submitted as a batch job instead (`ttsframe.training.slurm`).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import inspect
import json
import os
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from ttsframe.codecs import build_codec
from ttsframe.config.training import ARCHITECTURE_FIELDS, SCHEDULES
from ttsframe.data.datamodule import ShardDataModule
from ttsframe.errors import ConfigError, UserError
from ttsframe.models.registry import all_tasks
from ttsframe.training import slurm
from ttsframe.training.audio_samples import AudioSamples, codec_renderer
from ttsframe.training.callbacks import TrainSummary
from ttsframe.training.loggers import LOGGERS, build_logger
from ttsframe.training.optim import OPTIMIZERS
from ttsframe.training.resume import (DataPosition, ResumableData, find_resume_checkpoint, read_checkpoint_meta,
                                      set_aside)
from ttsframe.training.curves import FILE as CURVES_FILE, TrainingCurves
from ttsframe.training.threads import training_threads
from ttsframe.training.trainer import ACCELERATORS, STRATEGIES, build_trainer, uses_gpu, world_size

OUTPUT_DIR = None  # one folder per train stage, named after it
DEPENDS_ON = ("data", "codec", "text", "model", "trainer")
LAUNCHES_JOBS = True  # launcher=slurm: run() submits the stage as a multi-task job
SHARD_DIR = "shards"  # the tokenize stage's output
READS = (SHARD_DIR,)
OPTIONS = ("task",)
LAUNCHERS = ("local", "slurm")
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")  # set by Lightning's DDP launch


def task_class(name: str) -> type[L.LightningModule]:
    """A stage's `task:` -> its Lightning module, from the family that owns it (`FAMILIES`)."""
    tasks = all_tasks()
    if name not in tasks:
        raise ConfigError(f"train stage: unknown task `{name}`; tasks: {', '.join(tasks)}")
    return tasks[name].task_class(name)


def check_config(cfg: DictConfig, ctx) -> str:
    """Fails early on a bad stage entry or missing groups; returns the task name."""
    unknown = set(ctx.options) - set(OPTIONS)
    if unknown or "task" not in ctx.options:
        raise ConfigError(f"stage {ctx.name}: options need `task:` ({', '.join(all_tasks())}); "
                          f"valid options: {', '.join(OPTIONS)}" + (f"; unknown: {sorted(unknown)}" if unknown else ""))
    for group in ("model", "trainer"):
        if group not in cfg:
            raise ConfigError(f"stage {ctx.name}: the recipe needs a `{group}` config (defaults: {group}: ...)")
    choices = {"launcher.name": (launcher_name(cfg), LAUNCHERS),
               "trainer.strategy": (cfg.trainer.strategy, STRATEGIES),
               "trainer.accelerator": (cfg.trainer.accelerator, ACCELERATORS),
               "trainer.logger": (cfg.trainer.logger, LOGGERS),
               "model.optim.name": (cfg.model.optim.name, OPTIMIZERS),
               "model.optim.schedule": (cfg.model.optim.schedule, SCHEDULES)}
    for key, (value, valid) in choices.items():
        if value not in valid:
            raise ConfigError(f"unknown {key} `{value}`; valid: {', '.join(valid)}")
    if cfg.trainer.strategy == "fsdp" and launcher_name(cfg) == "local" and not uses_gpu(cfg.trainer.accelerator):
        # Lightning's FSDPStrategy refuses accelerator=cpu (it shards onto CUDA devices only).
        raise ConfigError("trainer.strategy=fsdp needs CUDA GPUs (Lightning's FSDP refuses accelerator=cpu); "
                          "on CPUs use trainer.strategy=ddp, whose checkpoints have the same layout")
    return ctx.options["task"]


def with_stage_steps(cfg: DictConfig, stage: str) -> DictConfig:
    """cfg with trainer.max_steps = trainer.stage_max_steps[stage] where the trainer names the stage."""
    steps = (cfg.trainer.get("stage_max_steps") or {}).get(stage)
    if steps is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.trainer.max_steps = int(steps)
    print(f"train: {stage}: max_steps {int(steps)} (trainer.stage_max_steps.{stage})")
    return cfg


def launcher_name(cfg: DictConfig) -> str:
    return cfg.launcher.name if "launcher" in cfg else "local"


def run(cfg: DictConfig, ctx) -> dict:
    task = task_class(check_config(cfg, ctx))
    cfg = with_stage_steps(cfg, ctx.name)
    if task.FAMILY != cfg.model.family:
        raise ConfigError(f"stage {ctx.name}: task `{task.TASK}` trains a {task.FAMILY} model, but "
                          f"model.family is `{cfg.model.family}` (model={cfg.choices.model})")
    if ctx.force and (old := set_aside(ctx.out_dir)):
        print(f"train: --force: earlier checkpoints moved to {old}; starting from scratch")
    if launcher_name(cfg) == "slurm":
        return slurm.launch(cfg, ctx.index, ctx.name, ctx.out_dir, ctx.after)
    return train(cfg, ctx, task)


def build_data(cfg: DictConfig, shard_dir: Path, seed: int, feature: str = "codes") -> ShardDataModule:
    """The shard data module; fails unless the shards hold `feature` (a task's FEATURE: codes | mel)."""
    t = cfg.trainer
    data = ShardDataModule(shard_dir, max_frames=t.max_frames, max_batch_size=t.max_batch_size,
                           num_buckets=t.num_buckets, num_workers=t.num_workers, seed=seed,
                           persistent_workers=t.num_workers > 0, joined_rows=float(t.joined_rows),
                           spk_from_other_utterance=bool(t.spk_from_other_utterance))
    if data.feature != feature:
        needs = "codec codes (a codec with codebooks, e.g. codec=spectral)" if feature == "codes" else \
            f"`{feature}` features (e.g. codec=mel)"
        raise UserError(f"{shard_dir}: the shards hold `{data.feature}`, the model needs {needs}")
    return data


def build_task(cfg: DictConfig, task: type, data: ShardDataModule, seed: int) -> L.LightningModule:
    m = cfg.model
    overrides = {k: m[k] for k in ARCHITECTURE_FIELDS if m[k] is not None}
    state = None
    if m.get("init_from"):
        model_config, state = pretrained_start(task, m.init_from, data, overrides)
    else:
        if "index" in inspect.signature(task.build_model_config).parameters:  # tasks that read more of the shards
            overrides["index"] = data.index
        try:
            model_config = task.build_model_config(m.preset, data.vocab_size, data.n_codebooks, data.codebook_size,
                                                   **overrides)
        except ValueError as e:
            raise ConfigError(f"model={cfg.choices.model}: {e}") from None
    extra = {}
    if m.loss:
        if "loss" not in inspect.signature(task).parameters:
            raise ConfigError(f"model.loss: task `{task.TASK}` takes no loss settings; remove model.loss")
        extra["loss"] = OmegaConf.to_container(m.loss, resolve=True)
    try:
        module = task(model_config=model_config, optim=OmegaConf.to_container(m.optim, resolve=True), seed=seed, **extra)
    except ValueError as e:
        raise ConfigError(f"model={cfg.choices.model}: {e}") from None
    if state is not None:  # a resumed run's checkpoint replaces these weights
        module.model.load_state_dict(state, strict=True)
        print(f"train: {task.TASK} starts from the weights of {m.init_from}")
    return module


def pretrained_start(task: type, source: str, data: ShardDataModule, overrides: dict) -> tuple[dict, dict]:
    """(model config fields, state dict) of the released weights `source` (`model.init_from`) for
    `task`, checked against the shards by the task's `initial_model(source, index, vocab_size)`."""
    if overrides:
        raise ConfigError(f"model.init_from: the model's sizes are those of {source}; remove "
                          + ", ".join(f"model.{k}" for k in overrides))
    start = getattr(task, "initial_model", None)
    if start is None:
        raise ConfigError(f"model.init_from: task `{task.TASK}` cannot start from released weights "
                          "(cosyvoice_lm and cosyvoice_flow can)")
    try:
        return start(source, data.index, data.vocab_size)
    except ValueError as e:
        raise ConfigError(f"model.init_from={source}: {e}") from None


def audio_sample_callbacks(cfg: DictConfig, module: L.LightningModule, shard_dir: Path, out_dir: Path) -> list:
    """The validation audio-sample callback, when enabled and the task can render samples."""
    if cfg.trainer.audio_samples <= 0 or not hasattr(module, "sample_features"):
        return []
    codec = build_codec(cfg.codec)
    if getattr(codec, "needs_fit", False):
        fitted = shard_dir / "codec.safetensors"
        if not fitted.is_file():
            print(f"train: no audio samples: the fitted codec {fitted} is missing")
            return []
        codec.load(fitted)
    return [AudioSamples(codec_renderer(codec), codec.sample_rate, out_dir / "samples", cfg.trainer.audio_samples)]


def resume_checkpoint(stage_dir: Path, model_config: dict) -> tuple[Path | None, int]:
    """The checkpoint to resume from and its step, after checking it holds the same model."""
    path = find_resume_checkpoint(stage_dir)
    if path is None:
        return None, 0
    meta = read_checkpoint_meta(path)
    if meta["hyper_parameters"].get("model_config") != model_config:
        raise UserError(f"{path} holds another model than the config asks for; run with --force to start over "
                        f"(the old checkpoints are kept in {stage_dir}/checkpoints.<n>/) or use another exp_dir")
    print(f"train: resuming from {path} (step {meta['global_step']})")
    return path, meta["global_step"]


@contextlib.contextmanager
def workers_run_this_stage(cfg: DictConfig, ctx):
    """Local multi-process DDP (`strategy=ddp` from `python -m ttsframe run`) starts each worker
    with this process's command line. Make that command run this stage alone (the other stages
    are rank 0's work) without --force, and afterwards undo the launch (the environment Lightning
    set, the process group), so a later train stage of the same command starts its own workers."""
    launches = sys.argv[1:2] == ["run"] and "LOCAL_RANK" not in os.environ and not SLURMEnvironment.detect()
    argv, env = sys.argv[:], {k: os.environ.get(k) for k in _LAUNCH_ENV}
    if launches:
        sys.argv = [sys.argv[0], *slurm.stage_args(cfg, ctx.index)]
    try:
        yield
    finally:
        if launches:
            sys.argv = argv
            for key, value in env.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def train(cfg: DictConfig, ctx, task: type) -> dict:
    with training_threads(cfg.trainer.threads):
        try:
            return train_model(cfg, ctx, task)
        finally:
            # The trainer's loader iterators sit in reference cycles: freed here, their workers stop
            # now, not when a worker process the next stage forks garbage-collects its copy of them
            # ("AssertionError: can only test a child process" in the next stage's log).
            gc.collect()


def train_model(cfg: DictConfig, ctx, task: type) -> dict:
    t = cfg.trainer
    seed = int(t.seed if t.seed is not None else cfg.seed)
    data = build_data(cfg, ctx.exp_dir / SHARD_DIR, seed, getattr(task, "FEATURE", "codes"))
    L.seed_everything(seed, workers=True, verbose=False)
    module = build_task(cfg, task, data, seed)
    checkpoint, step = resume_checkpoint(ctx.out_dir, dict(module.hparams.model_config))
    summary_path = ctx.out_dir / "summary.json"
    if checkpoint and 0 < t.max_steps <= step:
        print(f"train: {checkpoint} is at step {step} >= trainer.max_steps={t.max_steps}: nothing to train")
        return json.loads(summary_path.read_text()) if summary_path.is_file() else {"global_step": step}
    position, summary = DataPosition(seed), TrainSummary(summary_path)
    logger = build_logger(t.logger, ctx.out_dir, t.wandb_project, f"{cfg.recipe}/{ctx.name}")
    curves = TrainingCurves(ctx.out_dir / CURVES_FILE, int(t.log_every_n_steps))
    callbacks = [position, summary, curves, *audio_sample_callbacks(cfg, module, ctx.exp_dir / SHARD_DIR, ctx.out_dir)]
    trainer = build_trainer(t, ctx.out_dir, logger, callbacks)
    print(f"train: {ctx.name}: {task.__name__}, {world_size(t)} process(es), max_steps {t.max_steps} -> {ctx.out_dir}")
    with workers_run_this_stage(cfg, ctx), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resuming
        trainer.fit(module, datamodule=ResumableData(data, position), ckpt_path=checkpoint)
        trainer.strategy.barrier("summary.json")  # rank 0 writes it at the end of fit; the other ranks read it
    return json.loads(summary_path.read_text())
