"""Writes tests/fixtures/cosyvoice2/: CosyVoice 2's own modules at a tiny size, random weights, fixed inputs
and the outputs they give, for tests/unit/models/cosyvoice/test_cosyvoice2_equivalence.py.

Not run by the tests, and not importable from ttsframe: it needs the reference code, in an
environment of its own (its pins differ from ttsframe's). How the committed fixture was made:

    git clone https://github.com/FunAudioLLM/CosyVoice && cd CosyVoice && git submodule update --init
    python -m venv /tmp/cv2ref/venv && /tmp/cv2ref/venv/bin/pip install torch==2.13.0 numpy scipy einops \\
        omegaconf diffusers==0.29.0 conformer==0.3.2 transformers==4.51.3 safetensors
    PYTHONPATH=$PWD:$PWD/third_party/Matcha-TTS /tmp/cv2ref/venv/bin/python \\
        <ttsframe>/scripts/make_cosyvoice2_fixture.py --out <ttsframe>/tests/fixtures/cosyvoice2

Per part it writes `<part>.safetensors`: the reference module's state dict under `state.<key>`
(named as in the released `<part>.pt`, weight norm included) and the inputs and outputs under
`io.<name>`; the reference's constructor arguments are in the file's metadata (`kwargs`, JSON).
`<part>_keys.json` lists the key -> shape of the module at the released size (what the
converters must map in full). The fixture was made from CosyVoice commit ace7c47 (Matcha-TTS dd9105b).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

SEED = 2024


def randomize(module: torch.nn.Module, seed: int, scale: float = 1.0) -> None:
    """Every parameter drawn again, seeded: N(0, scale / fan_in) for matrices, around 1 for norm
    gains, weight-norm magnitudes and Snake alphas, small for biases (the reference's own init
    leaves outputs near trivial: most convs at N(0, 0.01), zero biases)."""
    g = torch.Generator().manual_seed(seed)
    norms = {f"{name}.weight" for name, m in module.named_modules()
             if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)) or type(m).__name__ == "Qwen2RMSNorm"}
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in norms or name.endswith(("original0", "weight_g", "alpha")):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (scale / fan_in) ** 0.5)


def key_shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def write(out: Path, part: str, module: torch.nn.Module, io: dict[str, torch.Tensor], kwargs: dict,
          full: dict[str, list[int]]) -> None:
    tensors = {f"state.{k}": v.detach().clone() for k, v in module.state_dict().items()}  # tied weights: copies
    tensors.update({f"io.{k}": v.detach().contiguous() for k, v in io.items()})
    save_file(tensors, str(out / f"{part}.safetensors"), metadata={"kwargs": json.dumps(kwargs)})
    (out / f"{part}_keys.json").write_text(json.dumps(full, indent=0) + "\n")
    size = (out / f"{part}.safetensors").stat().st_size
    print(f"{part}: {len(tensors)} tensors, {size / 1024:.1f} KiB; released size {len(full)} keys, "
          f"{sum(torch.Size(s).numel() for s in full.values())} parameters")


# ---- HiFT -------------------------------------------------------------------------------------

HIFT_RELEASED = dict(in_channels=80, base_channels=512, nb_harmonics=8, sampling_rate=24000, nsf_alpha=0.1,
                     nsf_sigma=0.003, nsf_voiced_threshold=10, upsample_rates=[8, 5, 3],
                     upsample_kernel_sizes=[16, 11, 7], istft_params={"n_fft": 16, "hop_len": 4},
                     resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
                     source_resblock_kernel_sizes=[7, 7, 11], source_resblock_dilation_sizes=[[1, 3, 5]] * 3,
                     lrelu_slope=0.1, audio_limit=0.99)
HIFT_TINY = dict(HIFT_RELEASED, base_channels=32, upsample_rates=[4, 3, 2], upsample_kernel_sizes=[8, 7, 4],
                 resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3], [1, 3]],
                 source_resblock_kernel_sizes=[5, 5, 3], source_resblock_dilation_sizes=[[1, 3], [1, 3], [1]])


def build_hift(kwargs: dict, f0_channels: int):
    from cosyvoice.hifigan.f0_predictor import ConvRNNF0Predictor
    from cosyvoice.hifigan.generator import HiFTGenerator

    f0 = ConvRNNF0Predictor(num_class=1, in_channels=kwargs["in_channels"], cond_channels=f0_channels)
    return HiFTGenerator(**kwargs, f0_predictor=f0)


def make_hift(out: Path) -> None:
    full = key_shapes(build_hift(HIFT_RELEASED, 512))
    torch.manual_seed(SEED)
    hift = build_hift(HIFT_TINY, 16).eval()
    randomize(hift, SEED)
    with torch.no_grad():  # weights that keep the log-magnitudes moderate (few samples at audio_limit)
        for name, p in hift.named_parameters():
            if name.endswith("original0") and not name.startswith("f0_predictor"):
                p.mul_(0.3)
        # f0 of up to ~30 Hz, so that the mel has voiced and unvoiced frames
        hift.f0_predictor.classifier.weight.mul_(15.0)
        hift.f0_predictor.classifier.bias.fill_(0.0)
    mel = torch.randn(2, 80, 12, generator=torch.Generator().manual_seed(SEED + 1)) * 2 - 5  # (B, M, T)

    draws = {}  # the source's random phase and noise, as the reference draws them
    rand, randn_like = torch.rand, torch.randn_like

    def record_rand(*args, **kw):
        draws.setdefault("phase", rand(*args, **kw))
        return draws["phase"].clone()

    def record_randn_like(x, *args, **kw):
        value = randn_like(x, *args, **kw)
        if x.shape[-1] == HIFT_TINY["nb_harmonics"] + 1:
            draws.setdefault("noise", value.clone())
        return value

    torch.rand, torch.randn_like = record_rand, record_randn_like
    try:
        wav, source = hift.inference(speech_feat=mel)
    finally:
        torch.rand, torch.randn_like = rand, randn_like
    with torch.no_grad():
        f0 = hift.f0_predictor(mel)
    voiced = (f0 > HIFT_TINY["nsf_voiced_threshold"]).float().mean().item()
    print(f"hift: f0 {f0.min():.1f}..{f0.max():.1f} Hz, {voiced:.2f} voiced")
    assert 0.2 < voiced < 0.8, f"want voiced and unvoiced frames, got {voiced:.2f} voiced"
    clamped = (wav.abs() >= 0.99 * HIFT_TINY["audio_limit"]).float().mean().item()
    print(f"hift: |wav| <= {wav.abs().max():.3f}, {clamped:.3f} of the samples at the limit")
    assert clamped < 0.01
    io = {"mel": mel, "phase": draws["phase"], "noise": draws["noise"], "f0": f0, "source": source, "wav": wav}
    write(out, "hift", hift, io, {**HIFT_TINY, "f0_channels": 16}, full)


# ---- flow -------------------------------------------------------------------------------------

FLOW_RELEASED = dict(vocab_size=6561, input_size=512, output_size=80, spk_embed_dim=192, encoder_heads=8,
                     linear_units=2048, num_blocks=6, chunk_size=25, channels=256, attention_head_dim=64,
                     num_heads=8, n_blocks=4, num_mid_blocks=12)
FLOW_TINY = dict(vocab_size=50, input_size=32, output_size=80, spk_embed_dim=16, encoder_heads=2, linear_units=64,
                 num_blocks=2, chunk_size=4, channels=16, attention_head_dim=8, num_heads=2, n_blocks=1,
                 num_mid_blocks=2)


def build_flow(k: dict):
    """CausalMaskedDiffWithXvec as cosyvoice2.yaml builds it, at the sizes of `k`. The reference
    hard-codes width 512 in its look-ahead and upsampling layers: at another width they are
    rebuilt (same classes) at that width."""
    from omegaconf import DictConfig

    from cosyvoice.flow.decoder import CausalConditionalDecoder
    from cosyvoice.flow.flow import CausalMaskedDiffWithXvec
    from cosyvoice.flow.flow_matching import CausalConditionalCFM
    from cosyvoice.transformer.upsample_encoder import PreLookaheadLayer, Upsample1D, UpsampleConformerEncoder

    encoder = UpsampleConformerEncoder(
        output_size=k["input_size"], attention_heads=k["encoder_heads"], linear_units=k["linear_units"],
        num_blocks=k["num_blocks"], dropout_rate=0.1, positional_dropout_rate=0.1, attention_dropout_rate=0.1,
        normalize_before=True, input_layer="linear", pos_enc_layer_type="rel_pos_espnet",
        selfattention_layer_type="rel_selfattn", input_size=k["input_size"], use_cnn_module=False,
        macaron_style=False, static_chunk_size=k["chunk_size"])
    if k["input_size"] != 512:
        encoder.pre_lookahead_layer = PreLookaheadLayer(k["input_size"], k["input_size"], pre_lookahead_len=3)
        encoder.up_layer = Upsample1D(k["input_size"], k["input_size"], stride=2)
    estimator = CausalConditionalDecoder(
        in_channels=320, out_channels=80, channels=[k["channels"]], dropout=0.0,
        attention_head_dim=k["attention_head_dim"], n_blocks=k["n_blocks"], num_mid_blocks=k["num_mid_blocks"],
        num_heads=k["num_heads"], act_fn="gelu", static_chunk_size=k["chunk_size"] * 2, num_decoding_left_chunks=-1)
    cfm = DictConfig({"sigma_min": 1e-06, "solver": "euler", "t_scheduler": "cosine", "training_cfg_rate": 0.2,
                      "inference_cfg_rate": 0.7, "reg_loss_type": "l1"})
    decoder = CausalConditionalCFM(in_channels=240, n_spks=1, spk_emb_dim=80, cfm_params=cfm, estimator=estimator)
    return CausalMaskedDiffWithXvec(
        input_size=k["input_size"], output_size=80, spk_embed_dim=k["spk_embed_dim"], output_type="mel",
        vocab_size=k["vocab_size"], input_frame_rate=25, only_mask_loss=True, token_mel_ratio=2,
        pre_lookahead_len=3, encoder=encoder, decoder=decoder)


def make_flow(out: Path) -> None:
    full = key_shapes(build_flow(FLOW_RELEASED))
    flow = build_flow(FLOW_TINY).eval()
    randomize(flow, SEED + 10)
    g = torch.Generator().manual_seed(SEED + 11)
    prompt_token = torch.randint(0, FLOW_TINY["vocab_size"], (1, 4), generator=g)
    token = torch.randint(0, FLOW_TINY["vocab_size"], (1, 8), generator=g)
    prompt_feat = torch.randn(1, 8, 80, generator=g) - 4  # (1, T_p, M): 2 frames a token
    embedding = torch.randn(1, FLOW_TINY["spk_embed_dim"], generator=g)
    x = torch.randn(1, 80, 24, generator=g)  # an x_t for the estimator alone
    t = torch.tensor([0.3])
    io = {"prompt_token": prompt_token, "token": token, "prompt_feat": prompt_feat, "embedding": embedding,
          "x": x, "t": t, "noise": flow.decoder.rand_noise[:, :, :24].clone()}
    with torch.inference_mode():
        joined = torch.cat([prompt_token, token], dim=1)
        spks = flow.spk_embed_affine_layer(torch.nn.functional.normalize(embedding, dim=1))
        cond = torch.zeros(1, 80, 24)
        cond[:, :, :8] = prompt_feat.transpose(1, 2)
        for mode, streaming in (("offline", False), ("streaming", True)):
            h, _ = flow.encoder(flow.input_embedding(joined), torch.tensor([12]), streaming=streaming)
            mu = flow.encoder_proj(h).transpose(1, 2)  # (1, M, 24)
            io[f"mu_{mode}"] = mu
            io[f"velocity_{mode}"] = flow.decoder.estimator(x, torch.ones(1, 1, 24), mu, t, spks, cond,
                                                            streaming=streaming)
            io[f"mel_{mode}"], _ = flow.inference(token, torch.tensor([8]), prompt_token, torch.tensor([4]),
                                                  prompt_feat, torch.tensor([8]), embedding, streaming=streaming,
                                                  finalize=True)
            print(f"flow {mode}: |mu| <= {mu.abs().max():.2f}, |velocity| <= {io[f'velocity_{mode}'].abs().max():.2f}, "
                  f"mel {io[f'mel_{mode}'].min():.2f}..{io[f'mel_{mode}'].max():.2f}")
    assert not torch.allclose(io["mel_offline"], io["mel_streaming"]), "the chunk masks changed nothing"
    write(out, "flow", flow, io, FLOW_TINY, full)


# ---- LM ---------------------------------------------------------------------------------------

LLM_RELEASED = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                    num_attention_heads=14, num_key_value_heads=2, speech_token_size=6561)
LLM_TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, speech_token_size=40)


def build_llm(k: dict, folder: Path):
    """Qwen2LM as cosyvoice2.yaml builds it, its Qwen2Encoder reading a Qwen2.5-shaped checkpoint
    (random weights at the sizes of `k`) written to `folder`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from cosyvoice.llm.llm import Qwen2Encoder, Qwen2LM

    config = Qwen2Config(**{n: v for n, v in k.items() if n != "speech_token_size"}, rope_theta=1e6,
                         rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=32768,
                         use_sliding_window=False, attention_dropout=0.0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return Qwen2LM(llm_input_size=k["hidden_size"], llm_output_size=k["hidden_size"],
                   speech_token_size=k["speech_token_size"], llm=Qwen2Encoder(str(folder)), sampling=None,
                   length_normalized_loss=True, lsm_weight=0, mix_ratio=[5, 15])


def llm_logits(llm, text, text_len, speech, speech_len, bistream: bool):
    """The reference's training rows (`prepare_lm_input_target`, its bistream draw forced) and the
    logits of its LM over them."""
    import random

    draw = random.random
    random.random = (lambda: 0.0) if bistream else (lambda: 1.0)
    try:
        with torch.no_grad():
            sos = llm.llm_embedding.weight[llm.sos].reshape(1, 1, -1)
            task = llm.llm_embedding.weight[llm.task_id].reshape(1, 1, -1)
            # no instruction tokens, passed explicitly as empty: without them it assumes width 896
            none = torch.zeros(text.shape[0], 0, dtype=torch.long)
            target, lm_input, lm_input_len = llm.prepare_lm_input_target(
                sos, text, llm.llm.model.model.embed_tokens(text), text_len, task, speech,
                llm.speech_embedding(speech), speech_len, none, llm.llm.model.model.embed_tokens(none),
                torch.zeros_like(text_len))
            hidden, _ = llm.llm(lm_input, lm_input_len)
            return llm.llm_decoder(hidden), target, lm_input_len
    finally:
        random.random = draw


def make_llm(out: Path) -> None:
    import tempfile

    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):  # the released size, for its key list only
        full = key_shapes(Qwen2ForCausalLM(Qwen2Config(
            **{n: v for n, v in LLM_RELEASED.items() if n != "speech_token_size"}, tie_word_embeddings=True)))
    n_speech = LLM_RELEASED["speech_token_size"]
    full = {**{f"llm.model.{k}": v for k, v in full.items()}, "llm_embedding.weight": [2, 896],
            "llm_decoder.weight": [n_speech + 3, 896], "llm_decoder.bias": [n_speech + 3],
            "speech_embedding.weight": [n_speech + 3, 896]}
    with tempfile.TemporaryDirectory() as folder:
        llm = build_llm(LLM_TINY, Path(folder)).eval()
    randomize(llm, SEED + 20)
    g = torch.Generator().manual_seed(SEED + 21)
    text_len, speech_len = torch.tensor([7, 6]), torch.tensor([40, 10])  # row 0 can be bistream (40 / 7 > 3)
    text = torch.randint(0, LLM_TINY["vocab_size"], (2, 7), generator=g)
    speech = torch.randint(0, LLM_TINY["speech_token_size"], (2, 40), generator=g)
    io = {"text": text, "text_len": text_len, "speech": speech, "speech_len": speech_len}
    for layout in ("unistream", "bistream"):
        logits, target, lengths = llm_logits(llm, text, text_len, speech, speech_len, layout == "bistream")
        io.update({f"logits_{layout}": logits, f"target_{layout}": target, f"lengths_{layout}": lengths})
        print(f"llm {layout}: rows {lengths.tolist()}, |logits| <= {logits.abs().max():.2f}, "
              f"fill targets {(target == LLM_TINY['speech_token_size'] + 2).sum().item()}")
    write(out, "llm", llm, io, LLM_TINY, full)


PARTS = {"hift": make_hift, "flow": make_flow, "llm": make_llm}


def stub_modules() -> None:
    """Modules the reference imports for what the fixture does not use: cosyvoice.utils.onnx
    (onnxruntime sessions for online features), cosyvoice.utils.file_utils (torchaudio, TensorRT
    export; only its logger is used) and matcha.utils (hydra, lightning; only its logger)."""
    import logging
    import sys
    import types

    onnx = types.ModuleType("cosyvoice.utils.onnx")
    onnx.online_feature, onnx.onnx_path, onnx.SpeechTokenExtractor, onnx.EmbeddingExtractor = False, "", None, None
    utils, pylogger = types.ModuleType("matcha.utils"), types.ModuleType("matcha.utils.pylogger")
    utils.__path__, pylogger.get_pylogger = [], logging.getLogger
    file_utils = types.ModuleType("cosyvoice.utils.file_utils")
    file_utils.logging, file_utils.convert_onnx_to_trt, file_utils.export_cosyvoice2_vllm = logging, None, None
    sys.modules.update({"cosyvoice.utils.onnx": onnx, "cosyvoice.utils.file_utils": file_utils,
                        "matcha.utils": utils, "matcha.utils.pylogger": pylogger})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/cosyvoice2"))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    stub_modules()
    for part in args.parts:
        PARTS[part](args.out)


if __name__ == "__main__":
    main()
