"""How the synthesize / release stages pick the family and, for MELLE, the vocoder."""

import pytest
from omegaconf import OmegaConf

from ttsframe.codecs.mel import MelConfig
from ttsframe.errors import ConfigError, UserError
from ttsframe.models.melle.synthesizer import MelleSynthesizer
from ttsframe.models.valle.synthesizer import ValleSynthesizer
from ttsframe.pipeline.runner import StageContext
from ttsframe.pipeline.synthesize import model_options, stage_family, stage_vocoder
from ttsframe.vocoders.config import VocoderConfig
from ttsframe.vocoders.griffin_lim import GriffinLim
from ttsframe.vocoders.hifigan import HifiGanGenerator, HifiGanVocoder, save_generator, tiny

CODEC = {"name": "mel", "mel": MelConfig().to_dict(), "vocoder": "griffin_lim", "griffin_lim_iters": 3}
STAGES = [{"name": "prepare", "kind": "prepare"}, {"name": "voc", "kind": "train_vocoder"}]


def cfg(**parts):
    return OmegaConf.create({"seed": 0, "codec": CODEC, **parts})


def vocoder_cfg(**fields):
    return OmegaConf.merge(OmegaConf.structured(VocoderConfig), fields)


def ctx(**options):
    return StageContext(3, "synthesize", None, None, False, options)


def test_family_from_the_stage_options_or_the_model_group():
    assert stage_family(cfg(), ctx(model_stage="train_melle")) is MelleSynthesizer
    assert stage_family(cfg(), ctx(ar_stage="a", nar_stage="n")) is ValleSynthesizer
    assert stage_family(cfg(model={"family": "melle"}), ctx()) is MelleSynthesizer
    with pytest.raises(ConfigError, match="model.family is valle"):
        stage_family(cfg(model={"family": "valle"}), ctx(model_stage="train_melle"))
    with pytest.raises(ConfigError, match="which model family"):
        stage_family(cfg(), ctx())
    assert set(model_options(MelleSynthesizer)) == {"model_stage", "vocoder_stage", "checkpoint", "max_prompt_seconds"}
    assert "vocoder_stage" not in model_options(ValleSynthesizer)


def test_vocoder_without_a_vocoder_stage():
    vocoder, stage, path = stage_vocoder(cfg(), None, None)
    assert isinstance(vocoder, GriffinLim) and vocoder.n_iter == 3 and stage is path is None  # the codec's
    vocoder, _, _ = stage_vocoder(cfg(vocoder=vocoder_cfg(name="griffin_lim", griffin_lim_iters=5)), None, None)
    assert isinstance(vocoder, GriffinLim) and vocoder.n_iter == 5  # the vocoder group's


def test_vocoder_of_the_recipe_train_vocoder_stage(tmp_path):
    run = cfg(stages=STAGES, vocoder=vocoder_cfg(name="griffin_lim", griffin_lim_iters=4))
    vocoder, stage, path = stage_vocoder(run, tmp_path, None)  # trains nothing: the config's vocoder
    assert isinstance(vocoder, GriffinLim) and vocoder.n_iter == 4 and path is None
    trained = cfg(stages=STAGES, vocoder=vocoder_cfg(name="hifigan", preset="tiny", init_from=None, max_steps=10))
    with pytest.raises(UserError, match="voc/generator.safetensors not found: run the `voc` stage"):
        stage_vocoder(trained, tmp_path, None)
    save_generator(HifiGanGenerator(tiny()), MelConfig(), tmp_path / "voc" / "generator.safetensors")
    vocoder, stage, path = stage_vocoder(trained, tmp_path, None)
    assert isinstance(vocoder, HifiGanVocoder) and stage == "voc" and path == tmp_path / "voc" / "generator.safetensors"
    with pytest.raises(ConfigError, match="no `vocoder` config"):
        stage_vocoder(cfg(stages=STAGES), tmp_path, None)
