"""`import-cosyvoice2`: a folder in CosyVoice2-0.5B's released layout (the fixture's tiny weights,
tests/cosyvoice2_release.py) becomes a release that `load_release`, `synthesize` (streamed too) and the
demo read: sizes from cosyvoice2.yaml, the converted weights, Qwen's BPE text ids, HiFT, and a model
card that says where the weights come from and their license."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from cosyvoice2_release import MEL, N_SPEECH, SPK_DIM, write_released_folder

from ttsframe.errors import UserError
from ttsframe.inference import SynthesisItem

pytest.importorskip("onnxruntime", reason="the speech tokenizer and CAM++ run on onnxruntime")

RATE = 24000
OPTIONS_CHANGES = {"max_token_text_ratio": 3.0, "min_token_text_ratio": 1.0, "flow_steps": 3, "seed": 2}


def voice(seconds: float, f0: float = 150.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * t))).astype(np.float32)


ITEMS = [SynthesisItem("the cat sat on the mat.", voice(1.0), RATE, "this is a test."),
         SynthesisItem("hi there!", voice(0.7, 190.0), RATE, "a test")]


@pytest.fixture(autouse=True)
def private_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTSFRAME_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_released_folder(tmp_path_factory.mktemp("CosyVoice2-0.5B"))


@pytest.fixture(scope="module")
def release(source, tmp_path_factory):
    from ttsframe.models.cosyvoice.import_cosyvoice2 import import_cosyvoice2

    return import_cosyvoice2(source, tmp_path_factory.mktemp("imported") / "release")


@pytest.fixture(scope="module")
def synth(release):
    from ttsframe.release import load_release

    return load_release(release, device="cpu")


def options(synth):
    return dataclasses.replace(synth.default_options, **OPTIONS_CHANGES)


def test_cosyvoice2_yaml_gives_the_sizes_of_every_part(source):
    from ttsframe.models.cosyvoice.cosyvoice2_config import read_hyperpyyaml, released_configs
    from ttsframe.vocoders.hift import tiny

    configs = released_configs(source)
    lm, flow = configs.lm, configs.flow
    assert (lm.n_text, lm.n_speech, lm.d_model, lm.n_layers, lm.n_kv_heads, lm.release_layout) == (64, N_SPEECH, 32, 2, 2,
                                                                                                     True)
    assert (flow.n_speech, flow.spk_dim, flow.dim, flow.chunk_tokens, flow.ratio, flow.ahead) == (N_SPEECH, SPK_DIM, 32,
                                                                                                  4, 2, 3)
    assert configs.hift == dataclasses.replace(tiny(), f0_channels=16) and configs.mel == MEL
    assert (configs.sampling.top_k, configs.sampling.cfg_scale, configs.sampling.min_token_text_ratio) == (25, 0.7, 2.0)
    tree = read_hyperpyyaml(source / "cosyvoice2.yaml")  # !ref resolved, products computed, tags read as data
    assert tree["hifigan"]["generator"] == tree["hift"] and tree["flow"]["decoder"]["estimator"]["static_chunk_size"] == 8
    assert tree["flow"]["__class__"] == "cosyvoice.flow.flow.CausalMaskedDiffWithXvec"


def test_the_release_holds_every_part_and_a_card_with_the_source_and_license(release):
    names = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {"lm.safetensors", "flow.safetensors", "hift.safetensors", "vocab.json", "config.yaml", "README.md",
            "tokenizer/speech_tokenizer_v2.onnx", "speaker/campplus.onnx", "text_tokenizer/tokenizer.json"} <= names
    assert json.loads((release / "tokenizer.json").read_text())["path"] == "tokenizer/speech_tokenizer_v2.onnx"
    assert json.loads((release / "speaker.json").read_text())["speaker_model"] == "speaker/campplus.onnx"
    card = (release / "README.md").read_text()
    meta = yaml.safe_load(card[4:].split("\n---\n", 1)[0])
    assert meta["license"] == "apache-2.0"
    assert "https://huggingface.co/FunAudioLLM/CosyVoice2-0.5B" in card and "weights: Apache-2.0" in card
    assert "flow: CosyVoice2Flow" in card and "HiFT" in card and "the bpe tokenizer's own" in card
    config = yaml.safe_load((release / "config.yaml").read_text())
    assert config["release"]["sampling"]["top_p"] == 0.8 and config["text"]["frontend"] == "bpe"


def test_the_released_parts_are_the_converted_files(synth, source):
    from ttsframe.models.cosyvoice.cosyvoice2_config import released_configs
    from ttsframe.models.cosyvoice.flow_cosyvoice2 import CosyVoice2Flow, load_flow_checkpoint
    from ttsframe.models.cosyvoice.lm_release import load_llm_checkpoint
    from ttsframe.vocoders.hift import HiFTVocoder

    configs = released_configs(source)
    assert isinstance(synth.flow, CosyVoice2Flow) and isinstance(synth.vocoder, HiFTVocoder)
    for ours, theirs in ((synth.lm, load_llm_checkpoint(source / "llm.pt", configs.lm)),
                         (synth.flow, load_flow_checkpoint(source / "flow.pt", configs.flow))):
        state = theirs.state_dict()
        assert all(torch.equal(value, state[key]) for key, value in ours.state_dict().items())


def test_text_ids_are_the_bpe_tokenizers_own(synth, source):
    """What CosyVoice's QwenTokenizer gives: AutoTokenizer + its special tokens, ids as the tokenizer's."""
    from transformers import AutoTokenizer

    from ttsframe.inference.text import text_token_ids

    reference = AutoTokenizer.from_pretrained(str(source / "CosyVoice-BlankEN"))
    reference.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|endofprompt|>",
                                                                "[breath]"]})
    text = "the cat [breath] sat."
    [ids] = text_token_ids(synth.frontend, synth.vocab, [text])
    assert ids.tolist() == reference([text])["input_ids"][0] and int(ids.max()) < synth.lm.config.n_text


def test_synthesis_is_seeded_and_the_cli_synthesizes_and_streams(synth, release, tmp_path):
    from ttsframe.__main__ import main

    wavs = synth.synthesize(ITEMS, options(synth))
    assert len(wavs) == 2 and all(w.size and np.isfinite(w).all() for w in wavs) and synth.sample_rate == RATE
    assert all(len(w) % MEL.hop_length == 0 for w in wavs)
    assert all(np.array_equal(a, b) for a, b in zip(wavs, synth.synthesize(ITEMS, options(synth))))
    sf.write(tmp_path / "voice.wav", ITEMS[0].prompt_wav, RATE)
    for stream in (False, True):
        out = tmp_path / f"out_{stream}.wav"
        args = ["synthesize", "--release", str(release), "--text", "the cat sat.", "--prompt-wav",
                str(tmp_path / "voice.wav"), "--prompt-text", "this is a test.", "--out", str(out), "--device", "cpu",
                "--flow-steps", "2", "--seed", "1", *(["--stream"] if stream else [])]
        assert main(args) == 0 and sf.info(out).frames > 0


def test_stream_gives_the_offline_chunk_mode_mel(synth, monkeypatch):
    """Chunks of the flow (4 tokens) are emitted once their 3 look-ahead tokens have arrived, and their
    mel is offline chunk-mode synthesis's. The audio is close, not equal: HiFT's sine source restarts
    in every vocoded window (CosyVoice carries it over, `cache_source`; not done here)."""
    from ttsframe.inference.text import text_token_ids
    from ttsframe.models.cosyvoice import streaming
    from ttsframe.vocoders.bundle import vocode_mels

    item, opts = ITEMS[0], dataclasses.replace(options(synth), min_token_text_ratio=3.0)
    pushed, push = [], streaming.ChunkVocoder.push
    monkeypatch.setattr(streaming.ChunkVocoder, "push", lambda self, frames, final=False: (
        pushed.append(frames), push(self, frames, final))[1])
    stats = streaming.StreamStats()
    streamed = np.concatenate(list(streaming.stream_item(synth, item, opts, stats=stats)))
    prompt = synth.encode_prompts([item])
    tokens = synth.generate_tokens(text_token_ids(synth.frontend, synth.vocab, [item.text]), prompt, opts)
    [mel] = synth.decode_tokens(tokens, prompt, opts, mask_mode="chunk")
    torch.testing.assert_close(torch.cat(pushed), mel, atol=1e-5, rtol=1e-5)
    [offline] = vocode_mels(synth.features, synth.mel_config, [mel])
    assert stats.chunks >= 2 and len(streamed) == len(offline)
    assert np.sqrt(np.mean((streamed - offline) ** 2)) / np.sqrt(np.mean(offline ** 2)) < 0.2  # seen: 0.07


def test_the_demo_serves_it(release):
    from ttsframe.demo.inputs import Request
    from ttsframe.demo.releases import load_releases
    from ttsframe.demo.synthesis import synthesize

    [loaded] = load_releases([release])
    result = synthesize(loaded, Request("the cat sat.", ITEMS[0].prompt_wav, RATE, "a test."),
                        dataclasses.replace(loaded.default_options, **OPTIONS_CHANGES))
    assert result.sample_rate == RATE and result.wav.size and "flow" in result.parts


def test_a_folder_without_a_part_is_refused_naming_it(source, tmp_path):
    import shutil

    from ttsframe.__main__ import main
    from ttsframe.models.cosyvoice.import_cosyvoice2 import import_cosyvoice2

    partial = tmp_path / "partial"
    shutil.copytree(source, partial)
    (partial / "campplus.onnx").unlink()
    (partial / "speech_tokenizer_v2.onnx").unlink()
    with pytest.raises(UserError, match=r"missing: speech_tokenizer_v2.onnx \(the speech tokenizer.*campplus.onnx"):
        import_cosyvoice2(partial, tmp_path / "out")
    assert main(["import-cosyvoice2", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2


def test_the_hub_id_imports_from_the_local_cache_and_downloads_only_when_allowed(source, release, tmp_path,
                                                                                 monkeypatch):
    import huggingface_hub
    from hub_cache import hub_cache

    from ttsframe.__main__ import main
    from ttsframe.models.cosyvoice.import_cosyvoice2 import DOWNLOAD_PATTERNS, HUB_ID, import_cosyvoice2

    cache = hub_cache(tmp_path / "hub", HUB_ID, source)
    out = import_cosyvoice2(HUB_ID, tmp_path / "from_hub", cache_dir=cache)
    from safetensors.torch import load_file

    for name in ("lm.safetensors", "flow.safetensors", "hift.safetensors"):
        ours, theirs = load_file(out / name), load_file(release / name)
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert (out / "vocab.json").read_bytes() == (release / "vocab.json").read_bytes()
    assert main(["import-cosyvoice2", HUB_ID, "--out", str(tmp_path / "cli"), "--cache-dir", str(cache)]) == 0
    monkeypatch.delenv("TTSFRAME_HUB_DOWNLOAD", raising=False)
    with pytest.raises(UserError, match="not in the local Hugging Face cache.*hf download FunAudioLLM/Other"):
        import_cosyvoice2("FunAudioLLM/Other", tmp_path / "other", cache_dir=cache)

    calls = []  # a download: only the files the import reads, when allowed (flag or environment)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kw: calls.append((repo, kw)) or source)
    monkeypatch.setenv("TTSFRAME_HUB_DOWNLOAD", "1")
    import_cosyvoice2("FunAudioLLM/Other@v1", tmp_path / "downloaded")
    assert main(["import-cosyvoice2", "FunAudioLLM/Other", "--out", str(tmp_path / "cli2"), "--allow-download"]) == 0
    assert [(repo, kw["revision"], kw["local_files_only"], kw["allow_patterns"]) for repo, kw in calls] == [
        ("FunAudioLLM/Other", "v1", False, DOWNLOAD_PATTERNS), ("FunAudioLLM/Other", None, False, DOWNLOAD_PATTERNS)]
