"""VALL-E inference: KV-cache decoding equals teacher forcing, batched generation, synthesis; an AR
with a phoneme pointer starts at the target's first phoneme and ends once its pointer passes the text."""

import torch

from ttsframe.models.valle.generate import _start_pointers, generate_ar, generate_nar, synthesize_codes
from ttsframe.models.valle.model import ValleAR, ValleConfig, ValleNAR
from ttsframe.modules.sampling import SamplingOptions

VOCAB, K, N = 12, 3, 16


def models(**overrides):
    config = ValleConfig(
        vocab_size=VOCAB, n_codebooks=K, codebook_size=N, d_model=32, n_heads=4, n_layers=2, ffn_dim=64, dropout=0,
        **overrides,
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
        hidden, positions = ar.prefill(tokens, token_lengths, codes, prompt_lengths, cache)
        for step in range(5):
            audio_step = prompt_lengths + step  # the hidden state predicts the code at this audio step
            expected = full[torch.arange(2), audio_step]
            torch.testing.assert_close(ar.head(hidden), expected, atol=1e-5, rtol=1e-5)
            next_ids = codes[torch.arange(2), audio_step]  # teacher forcing
            hidden = ar.decode_step(next_ids, positions + step, cache)


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


def synthesis_items():
    """Two items: target texts, prompt texts, prompt codes (K, Tp)."""
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, N, (K, 4), generator=generator), torch.randint(0, N, (K, 2), generator=generator)]
    return [torch.tensor([4, 5, 6]), torch.tensor([7, 8])], [torch.tensor([9, 10]), torch.tensor([11])], prompts


def assert_rows_alone_as_together(ar, nar, options):
    texts, prompt_texts, prompts = synthesis_items()
    together = synthesize_codes(ar, nar, texts, prompt_texts, prompts, options)
    for i in range(2):
        alone = synthesize_codes(ar, nar, texts[i : i + 1], prompt_texts[i : i + 1], prompts[i : i + 1], options)
        assert together[i].shape[0] == K and together[i].shape[1] <= options.max_frames(torch.tensor(len(texts[i])))
        torch.testing.assert_close(together[i], alone[0])


def test_greedy_batch_equals_items_alone():
    ar, nar = models()
    assert_rows_alone_as_together(ar, nar, SamplingOptions(temperature=0.0, max_frames_per_token=1.0, max_frames_base=2))


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


# -- the phoneme pointer ------------------------------------------------------------------------
def pointer_ar():
    return models(phoneme_pointer=True, aligner_d_model=16)[0]


def never_eos(ar):
    """Makes EOS's logit about -100 at every step: only the pointer or the budget ends a row."""
    with torch.no_grad():
        ar.head.weight[ar.config.audio_eos] = 0.0
        ar.head.weight[ar.config.audio_eos, 0] = -1.0
        ar.transformer.final_norm.norm.bias[0] = 100.0


def set_advance(ar, move):
    """Makes the advance head predict ``move`` phonemes per frame (almost surely)."""
    with torch.no_grad():
        ar.advance_head[-1].weight.zero_()
        ar.advance_head[-1].bias.fill_(-30.0)
        ar.advance_head[-1].bias[move] = 30.0


def pointer_inputs():
    generator = torch.Generator().manual_seed(5)
    tokens = torch.randint(4, VOCAB, (3, 7), generator=generator)
    token_lengths = torch.tensor([7, 4, 5])
    prompt = torch.randint(0, N, (3, 9), generator=generator)  # wider than the longest prompt
    return tokens, token_lengths, prompt, torch.tensor([6, 0, 3]), torch.tensor([3, 0, 1])  # spoken phonemes


def test_a_pointer_ar_s_cached_decoding_matches_teacher_forcing():
    ar = pointer_ar().eval()
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, VOCAB, (2, 6), generator=generator)
    token_lengths, frame_lengths, prompt_lengths = torch.tensor([6, 3]), torch.tensor([9, 7]), torch.tensor([3, 2])
    codes = torch.randint(0, N, (2, 9), generator=generator)
    rows = torch.arange(2)
    with torch.no_grad():
        full = ar(tokens, token_lengths, codes, frame_lengths)
        steps = ar.align(tokens, token_lengths, codes, frame_lengths)[1]  # (B, T + 1) the phoneme index per step
        cache = ar.transformer.new_cache()
        hidden, positions = ar.prefill(tokens, token_lengths, codes, prompt_lengths, cache, steps)
        for step in range(5):
            audio_step = prompt_lengths + step
            torch.testing.assert_close(ar.head(hidden), full.logits[rows, audio_step], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(ar.advance_logits(hidden, codes[rows, audio_step]),
                                       full.advance[0][rows, audio_step], atol=1e-5, rtol=1e-5)
            phonemes = tokens[rows, steps[rows, audio_step + 1]]  # of the frame the next input predicts
            hidden = ar.decode_step(codes[rows, audio_step], positions + step, cache, phonemes)


def test_a_pointer_ar_starts_at_the_target_and_ends_past_its_text():
    ar = pointer_ar()
    never_eos(ar)
    tokens, token_lengths, prompt, prompt_lengths, spoken = pointer_inputs()
    start, track = _start_pointers(ar, tokens, token_lengths, prompt, prompt_lengths, spoken)
    assert start.tolist() == spoken.tolist() and track.shape == (3, 10)
    assert track[torch.arange(3), prompt_lengths].tolist() == spoken.tolist()  # the first generated frame's
    assert (track[0, :6] <= 3).all() and (track[0, 1:6] >= track[0, :5]).all()  # the prompt's: on its own text
    options = SamplingOptions(temperature=0.0, max_frames_per_token=3.0, max_frames_base=0, min_frames=1)
    set_advance(ar, 1)  # one phoneme per frame: as many codes as target phonemes, none for the prompt
    out = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
    assert [len(o) for o in out] == (token_lengths - spoken).tolist()
    # a floor of frames holds the row; then it ends at once
    out = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, min_frames=torch.tensor([6, 2, 2]),
                      prompt_text_lengths=spoken)
    assert [len(o) for o in out] == [6, 4, 4]
    set_advance(ar, 2)
    out = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
    assert [len(o) for o in out] == [2, 2, 2]  # 4, 4 and 4 phonemes to go: 2 frames of 2
    set_advance(ar, 0)  # a pointer that stays: the budget ends the rows
    out = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
    assert [len(o) for o in out] == (3 * token_lengths).tolist()
    # EOS still ends a row
    with torch.no_grad():
        ar.head.weight[ar.config.audio_eos, 0] = 1.0
    out = generate_ar(ar, tokens, token_lengths, prompt, prompt_lengths, options, prompt_text_lengths=spoken)
    assert [len(o) for o in out] == [1, 1, 1]


def test_a_pointer_ar_synthesizes_the_target_only_and_rows_alone_as_together():
    ar = pointer_ar()
    never_eos(ar)
    set_advance(ar, 1)
    _, nar = models()
    options = SamplingOptions(temperature=0.0, max_frames_per_token=3.0, max_frames_base=2)
    together = synthesize_codes(ar, nar, *synthesis_items(), options)
    assert [c.shape for c in together] == [(K, 3), (K, 2)]  # from the first target phoneme, one frame each
    with torch.no_grad():  # a head that is not sure: the expected move carries its fraction
        ar.advance_head[-1].bias.copy_(torch.tensor([1.0, 0.5, -1.0, -2.0]))
    assert_rows_alone_as_together(ar, nar, options)
