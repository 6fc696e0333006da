"""VALL-E inference: KV-cache decoding equals teacher forcing, batched generation, synthesis."""

import torch

from ttsframe.models.valle.generate import generate_ar, generate_nar, synthesize_codes
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.modules.sampling import SamplingOptions

VOCAB, K, N = 12, 3, 16


def models():
    config = ValleConfig(
        vocab_size=VOCAB, n_codebooks=K, codebook_size=N, d_model=32, n_heads=4, n_layers=2, ffn_dim=64, dropout=0
    )
    torch.manual_seed(0)
    return ValleAR(config).eval(), ValleNAR(config).eval()


def test_cached_decoding_matches_teacher_forced_logits():
    ar, _ = models()
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, VOCAB, (2, 6), generator=generator)
    token_lengths = torch.tensor([6, 3])
    codes = torch.randint(0, N, (2, 9), generator=generator)
    frame_lengths = torch.tensor([9, 7])
    prompt_lengths = torch.tensor([3, 2])
    with torch.no_grad():
        full = ar(tokens, token_lengths, codes, frame_lengths).logits  # (B, T + 1, V)
        cache = ar.transformer.new_cache()
        logits, positions = ar.prefill(tokens, token_lengths, codes, prompt_lengths, cache)
        for step in range(5):
            audio_step = prompt_lengths + step  # logits predict the code at this audio step
            expected = full[torch.arange(2), audio_step]
            torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
            next_ids = codes[torch.arange(2), audio_step]  # teacher forcing
            logits = ar.decode_step(next_ids, positions + step, cache)


def test_generate_ar_is_seeded_and_respects_budgets():
    ar, _ = models()
    tokens = torch.randint(4, VOCAB, (3, 4), generator=torch.Generator().manual_seed(1))
    token_lengths = torch.tensor([4, 2, 3])
    prompt = torch.randint(0, N, (3, 5), generator=torch.Generator().manual_seed(2))
    prompt_lengths = torch.tensor([5, 0, 2])
    options = SamplingOptions(top_k=8, top_p=0.9, repetition_window=4, seed=7, min_frames=2)
    budgets = torch.tensor([3, 6, 1])
    first = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, budgets)
    second = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, budgets)
    assert [a.tolist() for a in first] == [b.tolist() for b in second]
    for codes, budget in zip(first, budgets.tolist()):
        assert min(2, budget) <= len(codes) <= budget
        assert ((codes >= 0) & (codes < N)).all()
    assert not ar.training


def test_generate_ar_stops_at_eos():
    ar, _ = models()
    with torch.no_grad():
        ar.head.weight.zero_()
        ar.head.weight[ar.config.audio_eos, 0] = 1.0  # an EOS logit pulled by one feature
        ar.transformer.final_norm.norm.bias.zero_()
        ar.transformer.final_norm.norm.bias[0] = 100.0
    options = SamplingOptions(temperature=0.0, min_frames=3)
    no_prompt = torch.zeros(1, 0, dtype=torch.long)
    out = generate_ar(ar, torch.tensor([[5, 6]]), torch.tensor([2]), no_prompt, torch.tensor([0]), options)
    assert len(out[0]) == 3  # EOS was suppressed for 3 frames, then chosen

    # A floor per target phoneme, per row: 2 and 5 phonemes x 2.5 frames -> 5 and 12 frames.
    options = SamplingOptions(temperature=0.0, min_frames=1, min_frames_per_token=2.5)
    tokens = torch.tensor([[5, 6, 0, 0, 0], [5, 6, 7, 8, 9]])
    out = generate_ar(ar, tokens, torch.tensor([2, 5]), torch.zeros(2, 0, dtype=torch.long), torch.tensor([0, 0]),
                      options)
    assert [len(o) for o in out] == [5, 12]


def test_greedy_batch_equals_items_alone():
    ar, nar = models()
    options = SamplingOptions(temperature=0.0, max_frames_per_token=1.0, max_frames_base=2)
    texts = [torch.tensor([4, 5, 6]), torch.tensor([7, 8])]
    prompt_texts = [torch.tensor([9, 10]), torch.tensor([11])]
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, N, (K, 4), generator=generator), torch.randint(0, N, (K, 2), generator=generator)]
    together = synthesize_codes(ar, nar, texts, prompt_texts, prompts, options)
    for i in range(2):
        alone = synthesize_codes(ar, nar, texts[i : i + 1], prompt_texts[i : i + 1], prompts[i : i + 1], options)
        assert together[i].shape[0] == K and together[i].shape[1] <= len(texts[i]) + 2
        torch.testing.assert_close(together[i], alone[0])


def test_generate_nar_fills_every_codebook_and_keeps_the_first():
    _, nar = models()
    generator = torch.Generator().manual_seed(4)
    tokens = torch.randint(4, VOCAB, (2, 5), generator=generator)
    prompt = torch.randint(0, N, (2, K, 4), generator=generator)
    codes1 = torch.randint(0, N, (2, 6), generator=generator)
    frame_lengths = torch.tensor([6, 3])
    out = generate_nar(nar, tokens, torch.tensor([5, 4]), prompt, torch.tensor([4, 2]), codes1, frame_lengths)
    assert out.shape == (2, K, 6)
    assert out[0, 0].tolist() == codes1[0].tolist() and out[1, 0, :3].tolist() == codes1[1, :3].tolist()
    assert (out[1, :, 3:] == 0).all() and ((out >= 0) & (out < N)).all()
