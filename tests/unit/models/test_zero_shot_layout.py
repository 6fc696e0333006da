"""The zero-shot layout: generation from [prompt text + target text ; prompt audio] continues with
the target instead of stopping where the prompt ends. A toy VALL-E AR (phoneme k spoken as code k
for 4 frames, each sentence ending in "." and 4 frames of silence) trained on single sentences
emits EOS right after the prompt in every case; with a share of joined rows
(`ttsframe.data.joining`, `trainer.joined_rows`) it speaks the target sentence."""

import numpy as np
import torch

from ttsframe.data.collate import collate
from ttsframe.data.joining import join_same_speaker
from ttsframe.models.valle.generate import generate_ar
from ttsframe.models.valle.loss import codebook_loss
from ttsframe.models.valle.model import ValleAR
from ttsframe.models.valle.presets import valle_tiny
from ttsframe.modules.sampling import SamplingOptions

N_PHONEMES, FULL_STOP, BOUNDARY, FRAMES, SILENCE = 8, 9, 10, 4, 0


def sentence(rng: np.random.Generator, uid: int) -> dict:
    phonemes = rng.integers(1, N_PHONEMES + 1, int(rng.integers(3, 7)))
    codes = torch.tensor([*np.repeat(phonemes, FRAMES), *[SILENCE] * FRAMES])[None]  # (1, T)
    return {"id": str(uid), "speaker": "s", "tokens": torch.tensor([*phonemes, FULL_STOP]), "codes": codes,
            "frames": codes.shape[1]}


def trained_ar(joined_rows: float, steps: int = 400, seed: int = 0) -> ValleAR:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ValleAR(valle_tiny(BOUNDARY + 1, 1, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sentences = (sentence(rng, uid) for uid in range(10 ** 9))
    stream = join_same_speaker(sentences, joined_rows, np.random.default_rng(seed + 1), BOUNDARY)
    for _ in range(steps):
        batch = collate([next(stream) for _ in range(16)])
        loss = codebook_loss(model(batch.tokens, batch.token_lengths, batch.codes, batch.frame_lengths))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def continuations(model: ValleAR, pairs: int = 32) -> tuple[list[float], list[float]]:
    """Per (prompt A, target B) pair: generated length / B's length, and the share of B's frames said right."""
    rng = np.random.default_rng(99)
    ratios, right = [], []
    for i in range(pairs):
        prompt, target = sentence(rng, i), sentence(rng, 1000 + i)
        tokens = torch.cat([prompt["tokens"], torch.tensor([BOUNDARY]), target["tokens"]])[None]
        out = generate_ar(model, tokens, torch.tensor([tokens.shape[1]]), prompt["codes"],
                          torch.tensor([prompt["frames"]]), SamplingOptions(temperature=0),
                          max_frames=torch.tensor([3 * target["frames"]]), min_frames=torch.tensor([0]))[0]
        expected = target["codes"][0]
        n = min(len(out), len(expected))
        ratios.append(len(out) / len(expected))
        right.append(float((out[:n] == expected[:n]).sum()) / len(expected))
    return ratios, right


def test_joined_rows_teach_the_ar_to_continue_after_the_prompt():
    ratios, right = continuations(trained_ar(joined_rows=0.3))
    assert min(ratios) > 0  # never an EOS right after the prompt
    assert 0.8 < float(np.median(ratios)) < 1.25, ratios
    assert float(np.mean(right)) > 0.4, right  # measured 0.58


def test_single_sentence_rows_stop_at_the_prompt():
    """What the check catches: trained on single sentences only, the AR ends where the prompt does."""
    ratios, _ = continuations(trained_ar(joined_rows=0.0))
    assert sum(r == 0 for r in ratios) > 24, ratios  # measured 32 of 32


# -- CosyVoice's LM: the same toy over speech tokens (one token per frame) --------------------
def trained_lm(joined_rows: float, steps: int = 400, seed: int = 0):
    from ttsframe.models.cosyvoice.lm import SpeechLM, lm_loss
    from ttsframe.models.cosyvoice.presets import lm_tiny

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SpeechLM(lm_tiny(BOUNDARY + 1, 16, spk_dim=0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rows = ({**s, "speech": s["codes"][0]} for s in (sentence(rng, uid) for uid in range(10 ** 9)))
    stream = join_same_speaker(rows, joined_rows, np.random.default_rng(seed + 1), BOUNDARY)
    for _ in range(steps):
        batch = collate([next(stream) for _ in range(16)])
        prediction = model.predict(batch.tokens, batch.token_lengths, batch.speech, batch.speech_lengths)
        loss = lm_loss(prediction.logits, prediction.targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def lm_continuation_lengths(model, pairs: int = 16) -> list[float]:
    from ttsframe.models.cosyvoice.lm_generate import LMSamplingOptions, generate

    rng = np.random.default_rng(99)
    ratios = []
    for i in range(pairs):
        prompt, target = sentence(rng, i), sentence(rng, 1000 + i)
        text = torch.cat([prompt["tokens"], torch.tensor([BOUNDARY]), target["tokens"]])[None]
        options = LMSamplingOptions(temperature=0, repetition_window=0, min_token_text_ratio=0)
        out = generate(model, text, torch.tensor([text.shape[1]]), None, prompt["codes"], torch.tensor([prompt["frames"]]),
                       options, prompt_text_lengths=torch.tensor([len(prompt["tokens"]) + 1]))[0]
        ratios.append(len(out) / target["frames"])
    return ratios


def test_cosyvoice_lm_continues_after_the_prompt_with_joined_rows():
    single = lm_continuation_lengths(trained_lm(joined_rows=0.0))
    joined = lm_continuation_lengths(trained_lm(joined_rows=0.3))
    assert sum(r == 0 for r in single) > 12, single  # eos right after the prompt
    assert min(joined) > 0 and 0.8 < float(np.median(joined)) < 1.25, joined
