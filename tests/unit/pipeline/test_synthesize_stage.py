"""Stages `synthesize` and `release` on a hand-made experiment folder (tiny random models):
prompt choice, items.jsonl, resume, and a loadable release."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from ttsframe.codecs.mel import MelConfig
from ttsframe.codecs.spectral import Config, SpectralCodec
from ttsframe.data.manifest import Utterance, write_manifest
from ttsframe.errors import ConfigError
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.models.valle.presets import valle_tiny
from ttsframe.modules.sampling import SamplingOptions
from ttsframe.pipeline import release as release_stage
from ttsframe.pipeline import synthesize as synth_stage
from ttsframe.pipeline.runner import StageContext
from ttsframe.release import load_release
from ttsframe.text import CharFrontend, Vocabulary

FILE_RATE = 16000  # the manifests' audio; the codec runs at 8 kHz
CODEC = dict(name="spectral", n_codebooks=2, codebook_size=16, kmeans_iters=3, fit_max_frames=400,
             griffin_lim_iters=2, device="cpu",
             mel=dict(sample_rate=8000, n_fft=256, hop_length=64, win_length=256, n_mels=20, fmax=4000.0))
SPEAKERS = {"ann": 3, "bob": 2, "cid": 1}  # cid has no second utterance: no prompt
OPTIONS = {"ar_stage": "train_ar", "nar_stage": "train_nar", "batch_size": 2, "device": "cpu", "top_k": 8,
           "max_frames_per_token": 1.0, "max_frames_base": 6}
ROW_KEYS = {"id", "text", "speaker", "part_seconds",
            "prompt_id", "prompt_text", "prompt_audio", "reference_audio", "synth_audio",
            "seconds_generated", "seconds_compute", "length_ratio", "rtf", "mel_distance_to_reference"}


def tone(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * FILE_RATE)) / FILE_RATE
    return (0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * t))).astype(np.float32)


def save_checkpoint(path, model, task):
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 3,
                "hyper_parameters": {"model_config": dataclasses.asdict(model.config), "family": "valle",
                                     "task": task}}, path)


def utterances(tmp_path) -> list[Utterance]:
    rows = []
    for s, (speaker, count) in enumerate(SPEAKERS.items()):
        for i in range(count):
            path = tmp_path / "wavs" / f"{speaker}_{i}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, tone(0.5 + 0.1 * i, 110.0 + 40 * s), FILE_RATE)
            rows.append(Utterance(f"{speaker}_{i}", str(path), f"said by {speaker} {'a' * i}.", speaker, 0.5 + 0.1 * i,
                                  FILE_RATE))
    return rows


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """exp/: data/test.jsonl, shards/{vocab.json,codec.safetensors}, train_ar best.ckpt, train_nar last.ckpt."""
    root = tmp_path_factory.mktemp("exp")
    utts = utterances(root)
    write_manifest(root / "data" / "test.jsonl", utts)
    (root / "data" / "summary.json").write_text(json.dumps({"splits": {"train": {"hours": 0.5, "speakers": 4}}}))
    codec = SpectralCodec(Config(**{**CODEC, "mel": MelConfig(**CODEC["mel"])}))
    codec.fit([tone(1.0, 150.0)[::2]])
    codec.save(root / "shards" / "codec.safetensors")
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols([u.text for u in utts]), frontend.settings())
    vocab.save(root / "shards" / "vocab.json")
    torch.manual_seed(0)
    config = valle_tiny(len(vocab), 2, 16)
    save_checkpoint(root / "train_ar" / "checkpoints" / "best.ckpt", ValleAR(config), "valle_ar")
    save_checkpoint(root / "train_nar" / "checkpoints" / "last.ckpt", ValleNAR(config), "valle_nar")  # no best
    return root


def config():
    return OmegaConf.create({"recipe": "toy", "seed": 5, "codec": CODEC, "data": {"corpus": "builtin"},
                             "text": {"frontend": "chars", "language": "en-us"}})


def context(exp, name="synthesize", out="synth", force=False, **options):
    return StageContext(4, name, exp, exp / out, force, {**OPTIONS, **options})


def test_prompt_is_another_utterance_of_the_same_speaker(tmp_path):
    utts = utterances(tmp_path)
    pairs, alone = synth_stage.pair_prompts(list(reversed(utts)))
    assert alone == ["cid"] and len(pairs) == 5
    assert [(t.id, p.id) for t, p in pairs] == [("ann_0", "ann_1"), ("bob_0", "bob_1"), ("ann_1", "ann_2"),
                                                ("bob_1", "bob_0"), ("ann_2", "ann_0")]
    assert all(t.speaker == p.speaker and t.id != p.id for t, p in pairs)


def test_prompt_is_the_next_utterance_short_enough_to_say_whole(tmp_path):
    utts = utterances(tmp_path)  # ann_0..2 last 0.5, 0.6, 0.7 s; bob_0..1 0.5, 0.6 s
    pairs, _ = synth_stage.pair_prompts(utts, max_seconds=0.65)
    assert {t.id: p.id for t, p in pairs} == {"ann_0": "ann_1", "ann_1": "ann_0", "ann_2": "ann_0",
                                              "bob_0": "bob_1", "bob_1": "bob_0"}
    pairs, _ = synth_stage.pair_prompts(utts, max_seconds=0.4)  # none is short enough: the next one (cut)
    assert {t.id: p.id for t, p in pairs}["ann_1"] == "ann_2"


def test_items_written_with_their_fields_and_resumed(exp):
    ctx = context(exp)
    summary = synth_stage.run(config(), ctx)
    assert summary["items"] == summary["synthesized_now"] == 5 and summary["no_prompt_speakers"] == 1
    assert summary["rtf"] > 0
    assert set(summary["part_rtf"]) == {"frontend", "prompt", "ar", "nar", "decode"}
    assert sum(summary["part_rtf"].values()) <= summary["rtf"] * 1.001  # the parts lie within the call
    out = exp / "synth" / "test"
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["ann_0", "bob_0", "ann_1", "bob_1", "ann_2"]
    for row in rows:
        assert set(row) == ROW_KEYS and row["prompt_id"] != row["id"] and row["prompt_id"].startswith(row["speaker"])
        wav, rate = sf.read(row["synth_audio"])
        assert rate == 8000 and abs(len(wav) / rate - row["seconds_generated"]) < 1e-3 and len(wav) > 0
        reference = sf.info(row["reference_audio"]).duration
        assert row["length_ratio"] == pytest.approx(row["seconds_generated"] / reference, abs=2e-3)
        assert row["prompt_audio"].endswith(f"{row['prompt_id']}.wav")
    # Resume: nothing to do; then one lost wav redoes its batch only, with the same audio.
    assert synth_stage.run(config(), ctx)["synthesized_now"] == 0
    kept = (out / "ann_0.wav").stat().st_mtime_ns
    lost = (out / "ann_1.wav").read_bytes()
    (out / "ann_1.wav").unlink()
    again = synth_stage.run(config(), ctx)
    assert again["synthesized_now"] == 2 and again["items"] == 5  # batch [ann_1, bob_1]
    assert (out / "ann_1.wav").read_bytes() == lost and (out / "ann_0.wav").stat().st_mtime_ns == kept
    assert synth_stage.run(config(), context(exp, top_k=4))["synthesized_now"] == 5  # other options: all again


def test_max_items_and_unknown_options(exp):
    summary = synth_stage.run(config(), context(exp, out="synth_few", max_items=3, split="test"))
    assert summary["items"] == 3
    with pytest.raises(ConfigError, match="unknown option.*tempreature"):
        synth_stage.run(config(), context(exp, tempreature=0.5))


def test_release_stage_writes_a_loadable_release(exp):
    ctx = StageContext(5, "release", exp, exp / "release", False, {"ar_stage": "train_ar", "nar_stage": "train_nar"})
    summary = release_stage.run(config(), ctx)
    assert "ar.safetensors" in summary["files"] and "codec.safetensors" in summary["files"]
    card = (exp / "release" / "README.md").read_text()
    assert "builtin" in card and "train_nar/checkpoints/last.ckpt" in card
    synth = load_release(exp / "release", device="cpu")
    assert synth.sample_rate == 8000 and synth.max_prompt_seconds == 3.0
    assert synth.default_options == SamplingOptions()  # the recipe has no synthesize stage


def test_the_release_records_the_synthesize_stage_s_sampling_options(exp):
    cfg = config()
    cfg.stages = [{"name": "synthesize", "kind": "synthesize",
                   "options": {"ar_stage": "train_ar", "temperature": 0.0, "repetition_window": 10, "max_items": 3}}]
    ctx = StageContext(5, "release", exp, exp / "release_sampling", False, {"ar_stage": "train_ar", "nar_stage": "train_nar"})
    release_stage.run(cfg, ctx)
    synth = load_release(exp / "release_sampling", device="cpu")
    assert synth.default_options == SamplingOptions(temperature=0.0, repetition_window=10)
