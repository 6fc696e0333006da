"""Stage `evaluate` on a hand-made synthesis folder of real (espeak-ng) speech: WER tells right
from wrong content, ground truth sits beside synthesis, skipped metrics are named, and a killed
run resumes to the same numbers."""

import json

import pytest
from omegaconf import OmegaConf

from data_prep import builtin, builtin_synth
from data_prep.builtin_synth import Job
from ttsframe.config.evaluation import EvalConfig
from ttsframe.errors import UserError
from ttsframe.pipeline import evaluate
from ttsframe.pipeline.runner import StageContext

RATE = 22050
SENTENCES = ["Please call Stella and ask her to bring these things.", "The quick brown fox jumps over the lazy dog."]
WRONG = "Is the famous bridge still beside the lake?"  # what the bad "synthesis" says instead


def speak(jobs: list[Job]) -> None:
    builtin_synth.synthesize(jobs, num_workers=1)


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    """synth/test/items.jsonl of two voices x two sentences; the synthesis of every second item
    says another sentence."""
    root = tmp_path_factory.mktemp("exp")
    wavs = root / "wavs"
    voices = {v.name: v for v in builtin.TEST_VOICES}
    names = ["en-us-alicia", "en-us-robert"]  # held-out voices of the built-in corpus
    jobs, rows = [], []
    for name in names:
        for i, text in enumerate(SENTENCES):
            jobs.append(Job(voices[name], text, str(wavs / f"{name}_{i}.wav"), RATE))
            said = WRONG if i == 1 else text
            jobs.append(Job(voices[name], said, str(root / "synth" / "test" / f"{name}_{i}.wav"), RATE, seed=7))
    speak(jobs)
    for name in names:
        for i, text in enumerate(SENTENCES):
            other = 1 - i
            rows.append({"id": f"{name}_{i}", "text": text, "speaker": name, "prompt_id": f"{name}_{other}",
                         "prompt_text": SENTENCES[other], "prompt_audio": str(wavs / f"{name}_{other}.wav"),
                         "reference_audio": str(wavs / f"{name}_{i}.wav"),
                         "synth_audio": str(root / "synth" / "test" / f"{name}_{i}.wav"),
                         "seconds_generated": 2.0, "seconds_compute": 1.0, "rtf": 0.5,
                         "length_ratio": 0.7 + 0.2 * i})
    (root / "synth" / "test" / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def config(exp):
    eval_cfg = OmegaConf.structured(EvalConfig(resynthesis=False, mos=["dnsmos", "utmos"], device="cpu"))
    return OmegaConf.create({"recipe": "test", "exp_dir": str(exp), "seed": 0, "model": {"family": "valle"},
                             "eval": eval_cfg, "stages": []})


def run_stage(exp, force=False):
    ctx = StageContext(5, "evaluate", exp, exp / "eval", force, {"ar_stage": "train_ar", "nar_stage": "train_nar"})
    return evaluate.run(config(exp), ctx)


def test_scores_right_and_wrong_content_and_resumes(exp_dir):
    run_stage(exp_dir)
    folder = exp_dir / "eval" / "test"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["systems"] == ["ground_truth", "synthesis"]
    assert "utmos" in metrics["skipped"] and "utmos_repo" in metrics["skipped"]["utmos"]
    assert metrics["protocol"]["asr"]["backend"] == "faster_whisper"
    items = {item["id"]: item for item in metrics["items"]}
    right = [i for n, i in items.items() if n.endswith("_0")]
    wrong = [i for n, i in items.items() if n.endswith("_1")]
    assert all(i["synthesis"]["wer"] <= 0.34 for i in right), [i["synthesis"]["hypothesis"] for i in right]
    assert all(i["synthesis"]["wer"] >= 0.6 for i in wrong), [i["synthesis"]["hypothesis"] for i in wrong]
    truth, synthesis = metrics["aggregates"]["ground_truth"], metrics["aggregates"]["synthesis"]
    assert truth["items"] == synthesis["items"] == 4 and truth["wer"] < synthesis["wer"]
    assert synthesis["rtf"] == pytest.approx(0.5)
    assert synthesis["length_ratio_median"] == pytest.approx(0.8)  # of 0.7, 0.9 per voice
    assert synthesis["length_within_0p8_1p25"] == pytest.approx(0.5)
    # same voice as the prompt: both systems are espeak voices speaking as the prompt's voice
    assert truth["sim_to_prompt"] > 0.6 and synthesis["sim_to_reference"] > 0.6
    assert synthesis["mcd"] > 0 and "dnsmos_ovrl" in synthesis
    # per voice: each voice's two items, the wrong sentence in each voice's synthesis WER
    voices = metrics["by_speaker"]
    assert sorted(voices) == ["en-us-alicia", "en-us-robert"]
    for per_system in voices.values():
        assert per_system["synthesis"]["items"] == per_system["ground_truth"]["items"] == 2
        assert per_system["synthesis"]["wer"] > per_system["ground_truth"]["wer"]
        assert per_system["synthesis"]["length_ratio_median"] == pytest.approx(0.8)
    for item in metrics["items"]:
        for path in item["audio"].values():
            assert (folder / path).is_file()
    assert (folder / "report.html").is_file()

    # killed after the scores were written but before metrics.json: resumes to the same numbers
    rows = [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and len({(r["id"], r["system"]) for r in rows}) == 8
    (folder / "metrics.json").unlink()
    run_stage(exp_dir)
    again = json.loads((folder / "metrics.json").read_text())
    assert again["aggregates"] == metrics["aggregates"]


def test_without_synthesis_says_what_to_run(tmp_path):
    with pytest.raises(UserError, match="run the synthesize stage first"):
        run_stage(tmp_path)


def test_resynthesis_options_are_the_synthesize_stage_s():
    from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions

    settings = {"options": {"lm_stage": "train_lm", "split": "test", "cfg_scale": 0.0, "flow_steps": 3, "seed": 7}}
    used = evaluate.synthesis_options(CosyVoiceSamplingOptions, settings)
    assert used == CosyVoiceSamplingOptions(cfg_scale=0.0, flow_steps=3, seed=7)
    assert evaluate.synthesis_options(CosyVoiceSamplingOptions, {}) == CosyVoiceSamplingOptions()
