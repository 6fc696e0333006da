"""A release reads any sentence of its language: a tiny VALL-E release whose training text holds
a few words synthesizes a sentence with every phone of the en-us inventory, and its model card
names the symbols that training never saw."""

import numpy as np
import pytest
import torch

from ttsframe.codecs.mel import MelConfig
from ttsframe.codecs.spectral import Config, SpectralCodec
from ttsframe.errors import UserError
from ttsframe.inference import SynthesisItem
from ttsframe.models.valle.synthesizer import ValleSynthesizer
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.models.valle.presets import valle_tiny
from ttsframe.modules.sampling import SamplingOptions
from ttsframe.release import load_release, write_release
from ttsframe.text import PhonemizerFrontend, Vocabulary
from ttsframe.text.inventory import EN_US_PHONES

RATE = 8000
CODEC = dict(name="spectral", n_codebooks=2, codebook_size=16, kmeans_iters=3, fit_max_frames=400,
             griffin_lim_iters=2, device="cpu",
             mel=dict(sample_rate=RATE, n_fft=256, hop_length=64, win_length=256, n_mels=20, fmax=4000.0))
EVERY_PHONE = " ".join(dict.fromkeys(EN_US_PHONES.values())) + "."


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    codec = SpectralCodec(Config(**{**CODEC, "mel": MelConfig(**CODEC["mel"])}))
    codec.fit([tone(1.0)])
    frontend = PhonemizerFrontend()
    vocab = Vocabulary.build(frontend.symbols(["Hello world.", "A cat sat on the mat."]), frontend.settings(),
                             frontend.inventory().symbols)
    torch.manual_seed(0)
    config = valle_tiny(len(vocab), 2, 16)
    synth = ValleSynthesizer(ValleAR(config), ValleNAR(config), codec, frontend, vocab, codec_config=CODEC,
                             text_config={"frontend": "phonemizer", "language": "en-us"}, max_prompt_seconds=0.5)
    out = tmp_path_factory.mktemp("release")
    write_release(out, synth, {"recipe": "toy", "data": {"corpus": "builtin"}})
    return out


def test_a_sentence_with_every_phone_synthesizes(release):
    symbols = set(PhonemizerFrontend().symbols([EVERY_PHONE])[0])
    assert set(EN_US_PHONES) <= symbols
    tts = load_release(release, device="cpu")
    [wav] = tts.synthesize([SynthesisItem(EVERY_PHONE, tone(0.4), RATE, "Hello.")],
                           SamplingOptions(top_k=8, seed=1, max_frames_per_token=1.0, max_frames_base=4))
    assert wav.dtype == np.float32 and wav.size > 0 and np.isfinite(wav).all()
    # Another script: espeak spells the letters with symbols outside the inventory -> the clear error.
    with pytest.raises(UserError, match="no symbol for 'æ"):
        tts.synthesize([SynthesisItem("жук", tone(0.4), RATE, "Hello.")], SamplingOptions(seed=1))


def test_card_names_the_symbols_training_never_saw(release):
    card = (release / "README.md").read_text(encoding="utf-8")
    assert "the frontend's whole inventory" in card and "never seen in training" in card
    assert "`ʒ`" in card and "`iə`" in card and "`l`" not in card.split("never seen in training")[1].split("\n")[0]
