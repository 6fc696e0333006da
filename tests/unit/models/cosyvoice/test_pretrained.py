"""`model.init_from`: the LM and the flow of a CosyVoice 2 download (tests/cosyvoice2_release.py) or of a
release folder as the start of training, checked against the shards; the train stage refuses size
overrides and tasks that cannot start from released weights."""

import json
from types import SimpleNamespace

import pytest
import torch
from cosyvoice2_release import MEL, N_SPEECH, SPK_DIM, write_released_folder

from ttsframe.errors import ConfigError

pytest.importorskip("onnxruntime", reason="the import reads the speech tokenizer and CAM++ with onnxruntime")

INDEX = {"speech_vocab_size": N_SPEECH, "speech_frame_rate": 25.0, "spk_dim": SPK_DIM, "codec": {"mel": MEL.to_dict()}}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_released_folder(tmp_path_factory.mktemp("CosyVoice2-0.5B"))


def test_a_release_folder_starts_training_as_the_download_does(source, tmp_path):
    from ttsframe.models.cosyvoice.import_cosyvoice2 import import_cosyvoice2
    from ttsframe.models.cosyvoice.pretrained import pretrained_part

    release = import_cosyvoice2(source, tmp_path / "release")
    for part in ("lm", "flow"):
        (config, state, mel), (again, state_again, mel_again) = (pretrained_part(s, part) for s in (source, release))
        assert json.loads(json.dumps(config)) == again and mel == mel_again == MEL
        assert state.keys() == state_again.keys() and all(torch.equal(state[k], state_again[k]) for k in state)


def test_the_tasks_build_the_released_models_and_check_the_shards(source):
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2Flow
    from ttsframe.models.cosyvoice.task_flow import CosyVoiceFlowTask
    from ttsframe.models.cosyvoice.task_lm import CosyVoiceLMTask

    for task in (CosyVoiceLMTask, CosyVoiceFlowTask):
        config, state = task.initial_model(str(source), INDEX, 60)
        module = task(model_config=config)
        module.model.load_state_dict(state, strict=True)
    assert isinstance(module.model, CosyVoice2Flow) and module.prior_weight == 0.0
    with pytest.raises(ValueError, match="40 speech tokens are not the shards' 625.*tokenizer=s3_onnx"):
        CosyVoiceLMTask.initial_model(str(source), {**INDEX, "speech_vocab_size": 625}, 60)
    with pytest.raises(ValueError, match="the shards' 70 text ids do not fit its 64"):
        CosyVoiceLMTask.initial_model(str(source), INDEX, 70)
    wrong = {**INDEX, "spk_dim": 256, "codec": {"mel": {**MEL.to_dict(), "hop_length": 256}}}
    with pytest.raises(ValueError, match=r"16 dims, the shards' 256.*mel features .* \(codec=mel_cosyvoice2\)"):
        CosyVoiceFlowTask.initial_model(str(source), wrong, 60)


def test_the_train_stage_refuses_overrides_and_tasks_that_cannot_start_from_weights(source):
    from ttsframe.models.cosyvoice.task_lm import CosyVoiceLMTask
    from ttsframe.models.valle.task import ValleARTask
    from ttsframe.pipeline.train import pretrained_start

    data = SimpleNamespace(index=INDEX, vocab_size=60)
    with pytest.raises(ConfigError, match="sizes are those of .*; remove model.d_model"):
        pretrained_start(CosyVoiceLMTask, str(source), data, {"d_model": 64})
    with pytest.raises(ConfigError, match="task `valle_ar` cannot start from released weights"):
        pretrained_start(ValleARTask, str(source), data, {})
    with pytest.raises(ConfigError, match="model.init_from=.*does not fit the shards"):
        pretrained_start(CosyVoiceLMTask, str(source), SimpleNamespace(index={}, vocab_size=60), {})
