"""CosyVoice speech LM (both styles): shapes, padding, loss, KV cache, bistream layout, overfit,
generation bounds and seeds, Qwen2 checkpoint loading."""

import dataclasses

import pytest
import torch
from transformers import Qwen2ForCausalLM, Qwen2Model

from ttsframe.models.cosyvoice.lm import (IGNORE, LMConfig, SpeechLM, bistream_blocks, lm_loss,
                                          next_token_targets, speech_targets)
from ttsframe.models.cosyvoice.lm_generate import LMSamplingOptions, generate, sample_token
from ttsframe.models.cosyvoice.presets import PRESETS, get_preset
from ttsframe.models.cosyvoice.qwen2 import qwen2_config

N_TEXT, N_SPEECH, SPK = 12, 20, 8
STYLES = ["lm_tiny", "lm_qwen2_tiny"]
torch.set_num_threads(1)


def make(preset: str, seed: int = 0, **changes) -> SpeechLM:
    config = get_preset(preset, N_TEXT, N_SPEECH, **({"spk_dim": SPK} if preset == "lm_tiny" else {}))
    torch.manual_seed(seed)
    return SpeechLM(dataclasses.replace(config, **changes)).eval()


def batch(seed: int = 0, speech_width: int = 9):
    generator = torch.Generator().manual_seed(seed)
    text = torch.randint(1, N_TEXT, (3, 6), generator=generator)
    text_lengths = torch.tensor([6, 4, 5])
    text = text.masked_fill(torch.arange(6) >= text_lengths[:, None], 0)
    speech = torch.randint(0, N_SPEECH, (3, speech_width), generator=generator)
    speech_lengths = torch.tensor([speech_width, 5, 7])
    spk = torch.randn(3, SPK, generator=generator)
    return text, text_lengths, speech, speech_lengths, spk


def spk_of(model, spk):
    return spk if model.config.spk_dim else None


@pytest.fixture(scope="module", params=STYLES)
def model(request):
    return make(request.param)


def test_shapes_and_targets(model):
    text, text_lengths, speech, speech_lengths, spk = batch()
    logits = model(text, text_lengths, speech, speech_lengths, spk_of(model, spk))
    assert logits.shape == (3, 10, N_SPEECH + 1)
    targets = speech_targets(speech, speech_lengths, model.config.eos)
    for i, n in enumerate(speech_lengths.tolist()):
        assert targets[i].tolist() == speech[i, :n].tolist() + [N_SPEECH] + [IGNORE] * (9 - n)


def test_a_row_alone_equals_its_row_in_a_padded_batch(model):
    text, text_lengths, speech, speech_lengths, spk = batch()
    speech = speech.masked_fill(torch.arange(9) >= speech_lengths[:, None], 3)  # pads hold any value
    logits = model(text, text_lengths, speech, speech_lengths, spk_of(model, spk))
    for i, (lt, ls) in enumerate(zip(text_lengths.tolist(), speech_lengths.tolist())):
        alone = model(text[i:i + 1, :lt], text_lengths[i:i + 1], speech[i:i + 1, :ls], speech_lengths[i:i + 1],
                      spk_of(model, spk[i:i + 1]))
        torch.testing.assert_close(logits[i, :ls + 1], alone[0], atol=1e-5, rtol=1e-5)


def test_loss_counts_speech_and_eos_only(model):
    text, text_lengths, speech, speech_lengths, spk = batch()
    prediction = model.predict(text, text_lengths, speech, speech_lengths, spk_of(model, spk))
    expected = torch.cat([torch.cat([speech[i, :n], torch.tensor([N_SPEECH])]) for i, n in enumerate(speech_lengths)])
    assert prediction.targets.tolist() == expected.tolist()  # no text position has a target
    logits = model(text, text_lengths, speech, speech_lengths, spk_of(model, spk))
    targets = speech_targets(speech, speech_lengths, model.config.eos)
    full, packed = lm_loss(logits, targets), lm_loss(prediction.logits, prediction.targets)
    torch.testing.assert_close(full["loss"], packed["loss"])
    torch.testing.assert_close(full["accuracy"], packed["accuracy"])
    garbage = logits.masked_fill((targets == IGNORE)[..., None], 1e4)  # what pads predict cannot matter
    torch.testing.assert_close(lm_loss(garbage, targets)["loss"], full["loss"])


def test_lm_loss_values():
    logits = torch.tensor([[[4.0, 0.0], [0.0, 4.0], [9.0, 0.0]]])
    result = lm_loss(logits, torch.tensor([[0, 0, IGNORE]]))
    expected = (torch.nn.functional.cross_entropy(logits[0, :2], torch.tensor([0, 0])))
    torch.testing.assert_close(result["loss"], expected)
    assert result["accuracy"].item() == 0.5


@pytest.mark.parametrize("preset", STYLES)
def test_kv_cached_steps_equal_the_full_forward(preset):
    model = make(preset)
    text, text_lengths, speech, speech_lengths, spk = batch()
    speech_lengths = torch.tensor([9, 9, 9])
    full = model(text, text_lengths, speech, speech_lengths, spk_of(model, spk))  # (B, T + 1, V)
    prompt_lengths = torch.tensor([3, 1, 0])
    prompt = speech[:, :3].masked_fill(torch.arange(3) >= prompt_lengths[:, None], 0)
    with torch.no_grad():
        cache = model.new_cache(max_length=32)
        logits, positions = model.prefill(text, text_lengths, spk_of(model, spk), prompt, prompt_lengths, cache)
        rows = torch.arange(3)
        for step in range(5):
            torch.testing.assert_close(logits, full[rows, prompt_lengths + step], atol=1e-5, rtol=0)
            logits = model.decode_step(speech[rows, prompt_lengths + step], positions + step, cache)


def reference_bistream(text, speech, n_t=5, n_s=15):
    """CosyVoice 2's prepare_lm_input_target for one bistream row, as (kind, id) inputs and targets."""
    inputs, targets = [("sos", 0)], [IGNORE]
    for j in range(-(-(len(text) + 1) // n_t)):
        t, s = text[j * n_t:(j + 1) * n_t], speech[j * n_s:(j + 1) * n_s]
        if len(t) == n_t:
            targets += [IGNORE] * (n_t - 1) + s + ["fill"]
            inputs += [("text", x) for x in t] + [("speech", x) for x in s]
        else:
            targets += [IGNORE] * len(t) + speech[j * n_s:] + ["eos"]
            inputs += [("text", x) for x in t] + [("task", 1)] + [("speech", x) for x in speech[j * n_s:]]
    return inputs, targets


@pytest.mark.parametrize("text_length", [12, 10, 3])
def test_bistream_rows_follow_cosyvoice2(text_length):
    model = make("lm_qwen2_tiny", bistream=True, bistream_prob=1.0)
    generator = torch.Generator().manual_seed(1)
    speech_length = 3 * text_length + 4
    text = torch.randint(1, N_TEXT, (2, 12), generator=generator)
    speech = torch.randint(0, N_SPEECH, (2, 40), generator=generator)
    text_lengths, speech_lengths = torch.tensor([text_length, text_length]), torch.tensor([speech_length, 3 * text_length])
    blocks = bistream_blocks(text_lengths, speech_lengths, (5, 15), 1.0)
    assert blocks.tolist() == [text_length // 5, 0]  # row 1 has too few speech tokens per text token
    with torch.no_grad():
        packed, labels = model._pack(text, text_lengths, speech, speech_lengths, None, blocks)
    targets = next_token_targets(labels, packed.padding_mask, model.config.eos, model.config.fill)
    inputs, expected = reference_bistream(text[0, :text_length].tolist(), speech[0, :speech_length].tolist())
    ids = {"eos": model.config.eos, "fill": model.config.fill}
    assert targets[0, :len(expected)].tolist() == [ids.get(t, t) for t in expected]
    tables = {"sos": model.special_embedding, "task": model.special_embedding,
              "text": model.text_embedding, "speech": model.speech_embedding}
    with torch.no_grad():
        embedded = torch.stack([tables[kind].weight[i] for kind, i in inputs])
    torch.testing.assert_close(packed.values[0, :len(inputs)], embedded)
    assert int(packed.padding_mask[0].sum()) == len(inputs)
    model.train()
    prediction = model.predict(text, text_lengths, speech, speech_lengths)
    assert (prediction.targets == model.config.fill).sum() == text_length // 5
    assert prediction.logits.shape[-1] == N_SPEECH + 2


def test_bistream_draw_follows_prob():
    text_lengths, speech_lengths = torch.full((200,), 10), torch.full((200,), 40)
    assert bistream_blocks(text_lengths, speech_lengths, (5, 15), 0.0).sum() == 0
    drawn = bistream_blocks(text_lengths, speech_lengths, (5, 15), 0.5, torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {0, 2} and 60 < int((drawn > 0).sum()) < 140


@pytest.mark.parametrize("preset", STYLES)
def test_overfits_a_fixed_batch_then_speaks_it_greedily(preset):
    model = make(preset).train()
    text, text_lengths, speech, speech_lengths, spk = batch(seed=3, speech_width=12)
    spk = spk_of(model, spk)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        prediction = model.predict(text, text_lengths, speech, speech_lengths, spk)
        result = lm_loss(prediction.logits, prediction.targets)
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
        losses.append(result["loss"].item())
    assert losses[-1] < 0.1 * losses[0], losses
    greedy = LMSamplingOptions(temperature=0.0, repetition_window=0, min_token_text_ratio=0.0, max_token_text_ratio=4.0)
    out = generate(model, text, text_lengths, spk, speech[:, :0], torch.zeros(3, dtype=torch.long), greedy)
    assert [o.tolist() for o in out] == [speech[i, :n].tolist() for i, n in enumerate(speech_lengths.tolist())]
    assert model.training  # generation restores the mode


def test_generation_respects_min_and_max_length(model):
    text, text_lengths, speech, speech_lengths, spk = batch()
    options = LMSamplingOptions(min_token_text_ratio=1.0, max_token_text_ratio=2.5, seed=1)
    prompt_lengths = torch.tensor([2, 0, 1])
    bias = model.head.bias[model.config.eos].item()
    with torch.no_grad():
        model.head.bias[model.config.eos] = 1e3  # eos as soon as it is allowed
        early = generate(model, text, text_lengths, spk_of(model, spk), speech[:, :2], prompt_lengths, options)
        model.head.bias[model.config.eos] = -1e3  # never eos: the maximum length
        late = generate(model, text, text_lengths, spk_of(model, spk), speech[:, :2], prompt_lengths, options,
                        prompt_text_lengths=torch.tensor([2, 0, 1]))
        model.head.bias[model.config.eos] = bias
    assert [len(o) for o in early] == [6, 4, 5]
    assert [len(o) for o in late] == [10, 10, 10]  # floor(2.5 * (text - prompt text))
    assert all(bool((o < N_SPEECH).all()) for o in early + late)


def test_same_seed_same_tokens_other_seed_other_tokens(model):
    text, text_lengths, speech, _, spk = batch()
    run = lambda seed: generate(model, text, text_lengths, spk_of(model, spk), speech[:, :3], torch.tensor([3, 2, 1]),
                                LMSamplingOptions(top_p=1.0, top_k=0, min_token_text_ratio=2.0,
                                                  max_token_text_ratio=3.0, seed=seed))
    first, again, other = run(0), run(0), run(1)
    assert [o.tolist() for o in first] == [o.tolist() for o in again]
    assert [o.tolist() for o in first] != [o.tolist() for o in other]


def test_repetition_aware_sampling_falls_back_at_tau_r():
    logits = torch.zeros(64, 8)
    logits[:, 3] = 0.1  # greedy picks 3, the full distribution is nearly uniform
    options = LMSamplingOptions(temperature=0.0, repetition_window=10, tau_r=0.1)
    once, never = torch.tensor([[3, 1, 2]]).expand(64, 3), torch.tensor([[1, 2]]).expand(64, 2)
    assert (sample_token(logits, never, options, torch.Generator().manual_seed(0)) == 3).all()
    fallback = sample_token(logits, once, options, torch.Generator().manual_seed(0))  # 1 of 10 >= tau_r
    assert (fallback != 3).sum() > 32
    top1, noisy = LMSamplingOptions(top_k=1, repetition_window=0), torch.randn(64, 8)
    assert torch.equal(sample_token(noisy, never, top1, torch.Generator()), noisy.argmax(dim=-1))


def test_qwen2_backbone_loads_a_saved_checkpoint(tmp_path):
    model = make("lm_qwen2_tiny")
    config = model.backbone.model.config
    torch.manual_seed(5)
    other_vocab = Qwen2Model(qwen2_config(n_text=50, d_model=64, n_heads=4, n_kv_heads=2, n_layers=2, ffn_dim=128,
                                          dropout=0.0, rope_base=1e6, norm_eps=1e-6))
    other_vocab.save_pretrained(tmp_path / "bpe")
    assert model.load_pretrained_backbone(tmp_path / "bpe") == ["embed_tokens.weight"]
    theirs, ours = other_vocab.state_dict(), model.backbone.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs if k != "embed_tokens.weight")
    assert not torch.equal(ours["embed_tokens.weight"][:12], theirs["embed_tokens.weight"][:12])

    causal = Qwen2ForCausalLM(config)  # same vocabulary: the embedding comes too
    causal.save_pretrained(tmp_path / "causal")
    assert model.load_pretrained_backbone(tmp_path / "causal") == []
    assert torch.equal(model.text_embedding.weight, causal.model.embed_tokens.weight)

    with pytest.raises(ValueError, match="num_hidden_layers"):
        make("lm_qwen2_tiny", n_layers=3).load_pretrained_backbone(tmp_path / "bpe")
    with pytest.raises(FileNotFoundError):
        model.load_pretrained_backbone(tmp_path / "absent")
    with pytest.raises(ValueError, match="cosyvoice2"):
        make("lm_tiny").load_pretrained_backbone(tmp_path / "bpe")


def test_presets_and_config_checks():
    assert set(PRESETS) == {"lm_tiny", "lm_cpu", "lm_base", "lm_qwen2_tiny", "lm_qwen2_base", "lm_qwen2_release"}
    base = get_preset("lm_qwen2_base", 100, 6561)
    assert (base.d_model, base.n_layers, base.n_heads, base.n_kv_heads, base.ffn_dim) == (896, 24, 14, 2, 4864)
    assert get_preset("lm_qwen2_release", 100, 6561) == dataclasses.replace(base, release_layout=True)
    with pytest.raises(ValueError, match="valid: lm_tiny, lm_cpu, lm_base, lm_qwen2_tiny, lm_qwen2_base"):
        get_preset("lm_huge", 10, 10)
    with pytest.raises(ValueError, match="valid: cosyvoice1, cosyvoice2"):
        LMConfig(style="cosyvoice3", n_text=10, n_speech=10)
    with pytest.raises(ValueError, match="cosyvoice1 options"):
        LMConfig(style="cosyvoice2", n_text=10, n_speech=10, spk_dim=4)
    with pytest.raises(ValueError, match="style cosyvoice2 only"):
        LMConfig(style="cosyvoice1", n_text=10, n_speech=10, release_layout=True)
    with pytest.raises(ValueError, match="speaker embedding"):
        make("lm_tiny")(*batch()[:4])


def test_release_layout_has_cosyvoice2s_three_extra_ids_and_never_samples_two():
    """eos n_speech, an unused stop id n_speech + 1, fill n_speech + 2; speech embedding rows for all."""
    model = make("lm_qwen2_tiny", release_layout=True)
    config = model.config
    assert (config.eos, config.fill, config.n_out, config.never_sampled) == (20, 22, 23, (21, 22))
    assert model.speech_embedding.num_embeddings == model.head.out_features == 23
    text, text_lengths, speech, _, _ = batch()
    with torch.no_grad():
        model.head.bias[21:] = 1e3  # the ids generation must not sample
        out = generate(model, text, text_lengths, None, speech[:, :2], torch.tensor([2, 0, 1]),
                       LMSamplingOptions(min_token_text_ratio=1.0, max_token_text_ratio=2.0, seed=0))
    assert all(bool((o < N_SPEECH).all()) and len(o) > 0 for o in out)
