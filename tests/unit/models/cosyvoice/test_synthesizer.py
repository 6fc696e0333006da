"""CosyVoice synthesis with tiny random parts: batched zero-shot synthesis, the seed, resynthesis,
streaming against offline chunk-mode synthesis, and a release round trip."""

import dataclasses

import numpy as np
import pytest
import torch
from tiny_tokenizer import save_tiny_tokenizer

from ttsframe.codecs.mel import MelConfig
from ttsframe.inference import SynthesisItem
from ttsframe.models.cosyvoice.flow import CosyVoiceFlow
from ttsframe.models.cosyvoice.flow_presets import flow_tiny
from ttsframe.models.cosyvoice.lm import SpeechLM
from ttsframe.models.cosyvoice.presets import lm_tiny
from ttsframe.models.cosyvoice.sampling import CosyVoiceSamplingOptions
from ttsframe.inference.text import text_token_ids
from ttsframe.models.cosyvoice.streaming import StreamStats, stream_item
from ttsframe.models.cosyvoice.synthesizer import CosyVoiceSynthesizer
from ttsframe.release import load_release, write_release
from ttsframe.text import CharFrontend, Vocabulary
from ttsframe.tokenizers.s3_asr.io import load_tokenizer
from ttsframe.vocoders.bundle import vocode_mels

RATE = 22050
OPTIONS = CosyVoiceSamplingOptions(seed=3, min_token_text_ratio=1.5, max_token_text_ratio=2.0, flow_steps=3)


def tone(seconds: float, f0: float = 140.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * t))).astype(np.float32)


ITEMS = [SynthesisItem("hello world", tone(1.0), RATE, "the test"),
         SynthesisItem("a cat.", tone(0.8, 180.0), RATE, "hello")]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = save_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))  # seeds torch with 0
    tokenizer = load_tokenizer(folder)
    frontend = CharFrontend()
    vocab = Vocabulary.build(frontend.symbols(["hello world.", "the test, a cat"]), frontend.settings())
    lm = SpeechLM(lm_tiny(len(vocab), tokenizer.vocab_size, spk_dim=256))
    flow = CosyVoiceFlow(dataclasses.replace(flow_tiny(tokenizer.vocab_size), spk_dim=256))
    from ttsframe.eval.speaker import build_speaker_encoder

    return CosyVoiceSynthesizer(lm, flow, tokenizer, (build_speaker_encoder("resemblyzer", device="cpu"), "resemblyzer", None),
                                MelConfig(), frontend, vocab, text_config={"frontend": "chars", "language": "en-us"},
                                max_prompt_seconds=1.0)


def test_batch_gives_audio_within_the_token_budget_and_the_seed_fixes_it(synth):
    wavs = synth.synthesize(ITEMS, OPTIONS)
    assert len(wavs) == 2 and all(w.dtype == np.float32 and np.isfinite(w).all() and w.size for w in wavs)
    fpt, hop = synth.flow.config.frames_per_token, synth.mel_config.hop_length
    for wav, item in zip(wavs, ITEMS):
        n_text = len(synth.frontend.symbols([item.text])[0])
        assert len(wav) <= (np.floor(2.0 * n_text) * fpt + 1) * hop
    assert set(synth.last_timings) >= {"frontend", "prompt", "lm", "flow", "vocoder"}
    again = synth.synthesize(ITEMS, OPTIONS)
    assert all(np.array_equal(a, b) for a, b in zip(wavs, again))
    other = synth.synthesize(ITEMS, dataclasses.replace(OPTIONS, seed=4))
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(wavs, other))


def test_resynthesis_follows_the_recording_length(synth):
    [wav] = synth.resynthesize([tone(1.2)], RATE)
    assert abs(len(wav) / synth.sample_rate - 1.2) < 0.1 and np.isfinite(wav).all()


def test_resynthesis_decodes_with_the_given_options(synth):
    """mu alone (no steps, no noise) is the same for any seed and differs from the sampled flow."""
    cold = dataclasses.replace(OPTIONS, flow_steps=0, flow_temperature=0.0)
    a, b = (synth.resynthesize([tone(0.8)], RATE, dataclasses.replace(cold, seed=s))[0] for s in (1, 2))
    [sampled] = synth.resynthesize([tone(0.8)], RATE, OPTIONS)
    assert np.array_equal(a, b) and a.shape == sampled.shape and not np.array_equal(a, sampled)


def test_stream_equals_offline_chunk_mode_synthesis(synth):
    """The same tokens through the flow with the chunk mask offline: the same mel, and audio
    that differs only at the vocoder's chunk edges (relative RMS error < 1e-3; 1.5e-6 seen)."""
    item = ITEMS[0]
    stats = StreamStats()
    chunks = list(stream_item(synth, item, OPTIONS, stats=stats))
    streamed = np.concatenate(chunks)
    prompt = synth.encode_prompts([item])
    tokens = synth.generate_tokens(text_token_ids(synth.frontend, synth.vocab, [item.text]), prompt, OPTIONS)
    [mel] = synth.decode_tokens(tokens, prompt, OPTIONS, mask_mode="chunk")
    [offline] = vocode_mels(synth.features, synth.mel_config, [mel])
    assert len(chunks) >= 2 and stats.chunks == len(chunks) and stats.first_chunk_seconds is not None
    assert len(streamed) == len(offline)
    error = np.sqrt(np.mean((streamed - offline) ** 2)) / np.sqrt(np.mean(offline ** 2))
    assert error < 1e-3, error


def test_stream_resumed_on_other_threads_gives_the_same_chunks(synth):
    """A web server may resume the stream on another thread each time (inference mode is per thread)."""
    from concurrent.futures import ThreadPoolExecutor

    here = list(stream_item(synth, ITEMS[0], OPTIONS))
    stream = stream_item(synth, ITEMS[0], OPTIONS)
    threaded = []
    for _ in range(len(here) + 1):
        with ThreadPoolExecutor(1) as pool:  # a fresh thread for every step
            chunk = pool.submit(next, stream, None).result()
        if chunk is None:
            break
        threaded.append(chunk)
    assert len(threaded) == len(here) and all(np.array_equal(a, b) for a, b in zip(here, threaded))


def test_release_round_trip_gives_the_same_audio(synth, tmp_path):
    write_release(tmp_path, synth, {"recipe": "toy", "data": {"corpus": "builtin"}})
    assert {"lm.safetensors", "flow.safetensors", "tokenizer", "speaker.json", "vocab.json"} <= {
        p.name for p in tmp_path.iterdir()}
    loaded = load_release(tmp_path, device="cpu")
    first, second = synth.synthesize(ITEMS[:1], OPTIONS), loaded.synthesize(ITEMS[:1], OPTIONS)
    assert np.array_equal(first[0], second[0])
    card = (tmp_path / "README.md").read_text()
    assert "speech tokenizer: `s3_asr`, 9 tokens at 25.0 Hz" in card and "CosyVoice" in card


def test_flow_temperature_zero_with_no_steps_is_deterministic_and_options_are_checked(synth):
    prompt = synth.encode_prompts([ITEMS[0]])
    tokens = [torch.tensor([1, 2, 3, 4, 5, 6])]
    cold = dataclasses.replace(OPTIONS, flow_steps=0, flow_temperature=0.0)
    a, b = (synth.decode_tokens(tokens, prompt, dataclasses.replace(cold, seed=s))[0] for s in (1, 2))
    assert torch.equal(a, b) and a.shape[0] == round(6 * synth.flow.config.frames_per_token)
    warm = dataclasses.replace(OPTIONS, flow_steps=0, flow_temperature=1.0)
    c, d = (synth.decode_tokens(tokens, prompt, dataclasses.replace(warm, seed=s))[0] for s in (1, 2))
    assert not torch.equal(c, d)
    with pytest.raises(ValueError, match="flow_temperature"):
        CosyVoiceSamplingOptions(flow_temperature=-1.0)
    with pytest.raises(ValueError, match="flow_steps"):
        CosyVoiceSamplingOptions(flow_steps=-1)
