"""Config errors name the key, the source and the valid keys; overrides apply in order."""

import pytest

from ttsframe.config import load_run_config, parse_overrides
from ttsframe.config import loading
from ttsframe.errors import ConfigError


def test_overrides_select_group_set_keys_and_top_level(tmp_path):
    cfg = load_run_config("valle", ["data.min_duration=0.25", f"exp_dir={tmp_path}", "seed=7"])
    assert cfg.data.min_duration == 0.25
    assert cfg.exp_dir == str(tmp_path)
    assert cfg.seed == 7
    assert cfg.choices.data == "builtin"


def test_group_choice_override():
    cfg = load_run_config("valle", ["text=chars"])
    assert cfg.text.frontend == "chars"
    assert cfg.choices.text == "chars"


def test_unknown_key_on_command_line_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_run_config("valle", ["data.min_durration=1"])
    message = str(err.value)
    assert "command line" in message and "data.min_durration" in message
    assert "min_duration" in message and "max_duration" in message


def test_wrong_type_names_key_and_source():
    with pytest.raises(ConfigError) as err:
        load_run_config("valle", ["data.min_duration=abc"])
    assert "data.min_duration" in str(err.value) and "command line" in str(err.value)


def test_unknown_choice_and_recipe_list_the_valid_ones():
    with pytest.raises(ConfigError, match="choices: .*spectral"):
        load_run_config("valle", ["codec=nope"])
    with pytest.raises(ConfigError, match="recipes: .*valle"):
        load_run_config("nope")


def test_unknown_key_in_a_file_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "text").mkdir()
    bad = tmp_path / "text" / "bad.yaml"
    bad.write_text("# make test\nfrontend: chars\nlanguag: en-us\n")
    monkeypatch.setattr(loading, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError) as err:
        loading.load_group("text", "bad")
    assert str(bad) in str(err.value) and "languag" in str(err.value) and "language" in str(err.value)


def test_unknown_top_level_override():
    with pytest.raises(ConfigError, match="unknown key `nonsense`"):
        parse_overrides(["nonsense=1"])
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides(["data"])


def test_a_path_built_from_a_null_key_names_the_key_to_set():
    with pytest.raises(ConfigError) as err:
        load_run_config("cosyvoice2_finetune", ["model.init_from=null"])
    assert "`model.init_from` is null" in str(err.value) and "campplus.onnx" in str(err.value)
    cfg = load_run_config("cosyvoice2_finetune", ["model.init_from=/models/cv2"])
    assert cfg.vocoder.checkpoint == "/models/cv2/hift.pt"


def test_missing_keys_are_found_at_any_depth_without_resolving_interpolations():
    from omegaconf import OmegaConf

    node = OmegaConf.create({"a": "???", "b": {"c": "???", "d": "${model.nowhere}/x"}, "l": ["???", {"z": "???"}]})
    assert loading.missing_keys(node) == ["a", "b.c", "l[0]", "l[1].z"]
