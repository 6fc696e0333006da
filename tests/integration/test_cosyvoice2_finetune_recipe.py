"""The cosyvoice2_finetune recipe on a tiny slice of the built-in corpus, from a folder in CosyVoice2-0.5B's
released layout at the fixture's tiny sizes (tests/cosyvoice2_release.py): prepare -> tokenize (its toy
speech tokenizer and CAM++, Qwen-style BPE text, CosyVoice 2's mel at the tiny HiFT's hop) -> train_lm
(from llm.pt) -> train_flow (from flow.pt; CosyVoice2Flow with the CFM loss) -> synthesize -> evaluate ->
release (HiFT inside) -> the `synthesize` command on that release."""

import json

import pytest
import soundfile as sf
import torch
from cosyvoice2_release import MEL, N_SPEECH, write_released_folder
from recipe_files import with_synthesis_options

from ttsframe.__main__ import main

pytestmark = pytest.mark.integration
pytest.importorskip("onnxruntime", reason="the speech tokenizer and CAM++ run on onnxruntime")
SAMPLING = {"max_items": 2, "max_token_text_ratio": 3.0, "min_token_text_ratio": 1.0, "flow_steps": 2}


def test_finetune_from_the_released_layout_to_a_release(tmp_path, capsys):
    source = write_released_folder(tmp_path / "CosyVoice2-0.5B")
    exp = tmp_path / "exp"
    overrides = [f"exp_dir={exp}", "data=builtin_tiny", f"data.cache_dir={tmp_path / 'cache'}",
                 f"model.init_from={source}", f"codec.mel.n_fft={MEL.n_fft}", f"codec.mel.hop_length={MEL.hop_length}",
                 f"codec.mel.win_length={MEL.win_length}", f"tokenizer.vocab_size={N_SPEECH}", "vocoder.preset=tiny",
                 "trainer.max_steps=3", "trainer.stage_max_steps.train_lm=3", "trainer.val_check_interval=3",
                 "trainer.limit_val_batches=1", "trainer.logger=csv", "trainer.num_workers=0",
                 "trainer.checkpoint_every_n_steps=3", "trainer.progress_bar=false", "eval.max_items=2"]
    assert main(["run", str(with_synthesis_options("cosyvoice2_finetune", tmp_path, SAMPLING)), *overrides]) == 0
    out = capsys.readouterr().out
    assert "cosyvoice_lm starts from the weights of" in out and "cosyvoice_flow starts from the weights of" in out

    index = json.loads((exp / "shards" / "train.index.json").read_text())
    assert index["speech_vocab_size"] == N_SPEECH and index["spk_dim"] == 16 and index["codec"]["mel"]["hop_length"] == 96
    assert json.loads((exp / "shards" / "vocab.json").read_text())["specials"] == []

    from ttsframe.inference.checkpoint import read_checkpoint
    from ttsframe.models.cosyvoice.pretrained import pretrained_part

    for stage, task, part in (("train_lm", "cosyvoice_lm", "lm"), ("train_flow", "cosyvoice_flow", "flow")):
        trained = read_checkpoint(exp / stage / "checkpoints" / "last.ckpt", "cosyvoice", task)
        config, released, _ = pretrained_part(source, part)
        assert json.loads(json.dumps(trained.config)) == json.loads(json.dumps(config)) and trained.global_step == 3
        # 3 steps at the warmup's first learning rates (1e-5 x 3 / 200): the released weights, barely moved
        moved = max(float((trained.state_dict[k].float() - v.float()).abs().max()) for k, v in released.items())
        assert 0 < moved < 1e-3

    metrics = json.loads((exp / "eval" / "test" / "metrics.json").read_text())
    assert metrics["family"] == "cosyvoice" and metrics["aggregates"]["synthesis"]["items"] == 2
    release = exp / "release"
    names = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {"hift.safetensors", "text_tokenizer/tokenizer.json", "tokenizer/speech_tokenizer_v2.onnx",
            "speaker/campplus.onnx"} <= names
    card = (release / "README.md").read_text()
    assert f"training started from the weights in `{source}`" in card and "starting weights" in card
    wav = tmp_path / "voice.wav"
    sf.write(wav, 0.3 * torch.sin(torch.arange(24000) * 0.04).numpy(), 24000)
    args = ["synthesize", "--release", str(release), "--text", "the cat sat.", "--prompt-wav", str(wav),
            "--prompt-text", "a test.", "--out", str(tmp_path / "out.wav"), "--device", "cpu", "--flow-steps", "2"]
    assert main(args) == 0 and sf.info(tmp_path / "out.wav").frames > 0
