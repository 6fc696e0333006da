"""The train stage fails early, with the valid choices, on a bad stage entry or config."""

import pytest
import torch

from ttsframe.config import load_run_config
from ttsframe.errors import ConfigError
from ttsframe.pipeline.runner import run_recipe

AR = 2


def config(tmp_path, *overrides):
    return load_run_config("valle", [f"exp_dir={tmp_path}", *overrides])


@pytest.mark.parametrize("options,message", [
    ({"task": "nope"}, "unknown task `nope`; tasks: valle_ar, valle_nar, melle"),
    ({}, "options need `task:`"),
    ({"task": "valle_ar", "lr": 1}, "unknown: \\['lr'\\]"),
])
def test_bad_stage_options(tmp_path, options, message):
    cfg = config(tmp_path)
    cfg.stages[AR].options = options
    with pytest.raises(ConfigError, match=message):
        run_recipe(cfg, AR, AR)


def test_task_and_model_family_must_match(tmp_path):
    with pytest.raises(ConfigError, match="trains a valle model, but model.family is `melle`"):
        run_recipe(config(tmp_path, "model.family=melle"), AR, AR)


@pytest.mark.parametrize("override,message", [
    ("trainer.strategy=deepspeed", "trainer.strategy `deepspeed`; valid: auto, ddp, ddp_spawn, fsdp"),
    ("trainer.logger=mlflow", "trainer.logger `mlflow`; valid: wandb, csv, tensorboard"),
    ("model.optim.schedule=step", "model.optim.schedule `step`; valid: cosine, linear, noam, constant"),
    ("launcher.name=pbs", "launcher.name `pbs`; valid: local, slurm"),
])
def test_unknown_choices_list_the_valid_ones(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run_recipe(config(tmp_path, override), AR, AR)


@pytest.mark.skipif(torch.cuda.is_available(), reason="FSDP is refused only where no CUDA GPU is")
def test_fsdp_without_a_gpu_says_so_before_training(tmp_path):
    # Lightning's FSDPStrategy refuses accelerator=cpu: no 2-rank CPU run is possible, so the stage
    # stops at once with what to use instead.
    with pytest.raises(ConfigError, match="fsdp needs CUDA GPUs.*trainer.strategy=ddp"):
        run_recipe(config(tmp_path, "trainer.strategy=fsdp"), AR, AR)


def test_fsdp_strategy_wraps_transformer_blocks_and_saves_full_state_dicts():
    from lightning.pytorch.strategies import FSDPStrategy
    from omegaconf import OmegaConf

    from ttsframe.modules.transformer import TransformerBlock
    from ttsframe.training.trainer import build_strategy

    strategy = build_strategy(OmegaConf.create({"strategy": "fsdp", "devices": 8, "num_nodes": 2,
                                                "accelerator": "gpu", "find_unused_parameters": False}))
    assert isinstance(strategy, FSDPStrategy) and strategy._state_dict_type == "full"
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {TransformerBlock}


class _Data:
    vocab_size, n_codebooks, codebook_size = 20, 0, 0


def test_model_yaml_reaches_melle_reduction_factor_and_loss_weights(tmp_path):
    from ttsframe.models.melle.task import MelleTask
    from ttsframe.pipeline.train import build_task

    cfg = load_run_config("melle", [f"exp_dir={tmp_path}", "model.reduction_factor=4", "model.loss.flux_weight=0.2"])
    task = build_task(cfg, MelleTask, _Data(), seed=0)
    assert task.model.config.reduction_factor == 4 and task.loss_config.flux_weight == 0.2

    bad = load_run_config("melle", [f"exp_dir={tmp_path}", "model.loss.flux_wieght=0.2"])
    with pytest.raises(ConfigError, match="unknown MELLE loss settings \\['flux_wieght'\\]"):
        build_task(bad, MelleTask, _Data(), seed=0)
    valle = load_run_config("valle", [f"exp_dir={tmp_path}", "model.reduction_factor=2"])
    with pytest.raises(ConfigError, match="unknown VALL-E overrides"):
        from ttsframe.models.valle.task import ValleARTask

        build_task(valle, ValleARTask, type("D", (), {"vocab_size": 20, "n_codebooks": 2, "codebook_size": 8})(), 0)


def test_stage_max_steps_give_one_stage_its_own_budget(tmp_path):
    from ttsframe.pipeline.train import with_stage_steps

    cfg = load_run_config("cosyvoice", [f"exp_dir={tmp_path}", "trainer.max_steps=40",
                                        "trainer.stage_max_steps.train_lm=7"])
    assert with_stage_steps(cfg, "train_lm").trainer.max_steps == 7
    assert cfg.trainer.max_steps == 40 and with_stage_steps(cfg, "train_flow").trainer.max_steps == 40
