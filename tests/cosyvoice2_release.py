"""A CosyVoice 2 folder in the layout FunAudioLLM releases (CosyVoice2-0.5B), at the fixture's tiny sizes.

`write_released_folder(folder)` writes what `import-cosyvoice2` and `model.init_from` read:

    llm.pt, flow.pt, hift.pt      the reference modules' weights of tests/fixtures/cosyvoice2 (torch.save)
    cosyvoice2.yaml               the released file's layout (HyperPyYAML tags) with the fixture's sizes
    CosyVoice-BlankEN/            a Qwen2 config.json of the fixture LM's sizes and a tiny byte-level BPE
                                  tokenizer (lowercase letters and punctuation, a few merges; saved with
                                  `tokenizers` + `transformers`), which CosyVoice's 19 special tokens fit after
    speech_tokenizer_v2.onnx      a toy model with the S3 tokenizer's signature (25 Hz, 40 codes)
    campplus.onnx                 a toy model with CAM++'s signature (16-d, the fixture flow's speaker size)

The fixture's LM reads 40 speech tokens and its flow 50: the flow's token table keeps its first 40
rows here, so the parts share one tokenizer. HiFT's hop is 96 (4 x 3 x 2 x 4), so the mel features
are 24 kHz with hop 96 (`MEL`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from cosyvoice2_fixture import read_fixture
from onnx_writer import toy_campplus, toy_s3_model

from ttsframe.codecs.mel import MelConfig

N_SPEECH = 40  # the fixture LM's speech tokens
SPK_DIM = 16  # the fixture flow's speaker embedding
MEL = MelConfig(sample_rate=24000, n_fft=384, hop_length=96, win_length=384, n_mels=80, fmin=0.0, fmax=8000.0)
LETTERS = list("abcdefghijklmnopqrstuvwxyz.,'?!")
MERGES = [("Ġ", "t"), ("t", "h"), ("Ġt", "h"), ("Ġ", "a"), ("e", "r"), ("Ġ", "s"), ("i", "n"), ("o", "n")]

CONFIG = """# the layout of CosyVoice2-0.5B's cosyvoice2.yaml, at the sizes of tests/fixtures/cosyvoice2
__set_seed1: !apply:random.seed [1986]
sample_rate: {sample_rate}
llm_input_size: {hidden}
llm_output_size: {hidden}
spk_embed_dim: {spk_dim}
qwen_pretrain_path: ''
token_frame_rate: 25
token_mel_ratio: 2
chunk_size: {chunk}

llm: !new:cosyvoice.llm.llm.Qwen2LM
    llm_input_size: !ref <llm_input_size>
    llm_output_size: !ref <llm_output_size>
    speech_token_size: {n_speech}
    length_normalized_loss: True
    lsm_weight: 0
    mix_ratio: [5, 15]
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1

flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: {dim}
    output_size: {n_mels}
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: {n_speech}
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: 3
    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder
        output_size: {dim}
        attention_heads: {heads}
        linear_units: {ffn}
        num_blocks: {blocks}
        dropout_rate: 0.1
        input_size: {dim}
        use_dynamic_chunk: True
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: {n_mels}
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder
            in_channels: 320
            out_channels: {n_mels}
            channels: [{channels}]
            dropout: 0.0
            attention_head_dim: {head_dim}
            n_blocks: {n_blocks}
            num_mid_blocks: {mid}
            num_heads: {est_heads}
            act_fn: 'gelu'
            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
            num_decoding_left_chunks: -1

hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
{hift}
feat_extractor: !name:matcha.utils.audio.mel_spectrogram
    n_fft: {n_fft}
    num_mels: {n_mels}
    sampling_rate: !ref <sample_rate>
    hop_size: {hop}
    win_size: {win}
    fmin: 0
    fmax: 8000
    center: False
hifigan: !new:cosyvoice.hifigan.hifigan.HiFiGan
    generator: !ref <hift>
"""


def write_tokenizer(folder: Path) -> Path:
    """A tiny byte-level BPE tokenizer saved as transformers saves one (AutoTokenizer reads it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["Ġ", *LETTERS])}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=MERGES))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=bpe).save_pretrained(str(folder))
    return folder


def write_released_folder(folder: Path) -> Path:
    """Writes the CosyVoice 2 folder described above into `folder` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    llm, _, llm_kwargs = read_fixture("llm")
    flow, _, flow_kwargs = read_fixture("flow")
    hift, _, hift_kwargs = read_fixture("hift")
    assert llm_kwargs["speech_token_size"] == N_SPEECH and flow_kwargs["spk_embed_dim"] == SPK_DIM
    flow = {**flow, "input_embedding.weight": flow["input_embedding.weight"][:N_SPEECH].clone()}
    for name, state in (("llm", llm), ("flow", flow), ("hift", hift)):
        torch.save(state, folder / f"{name}.pt")
    hift_kwargs = {k: v for k, v in hift_kwargs.items() if k != "f0_channels"}
    hift_lines = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in hift_kwargs.items() if k != "sampling_rate")
    hift_lines += ("\n    sampling_rate: !ref <sample_rate>\n    f0_predictor: !new:cosyvoice.hifigan.f0_predictor."
                   f"ConvRNNF0Predictor\n        num_class: 1\n        in_channels: 80\n        cond_channels: "
                   f"{read_fixture('hift')[2]['f0_channels']}")
    (folder / "cosyvoice2.yaml").write_text(CONFIG.format(
        sample_rate=MEL.sample_rate, hidden=llm_kwargs["hidden_size"], spk_dim=SPK_DIM, n_speech=N_SPEECH,
        chunk=flow_kwargs["chunk_size"], dim=flow_kwargs["input_size"], n_mels=flow_kwargs["output_size"],
        heads=flow_kwargs["encoder_heads"], ffn=flow_kwargs["linear_units"], blocks=flow_kwargs["num_blocks"],
        channels=flow_kwargs["channels"], head_dim=flow_kwargs["attention_head_dim"], n_blocks=flow_kwargs["n_blocks"],
        mid=flow_kwargs["num_mid_blocks"], est_heads=flow_kwargs["num_heads"], hift=hift_lines, n_fft=MEL.n_fft,
        hop=MEL.hop_length, win=MEL.win_length))
    qwen = write_tokenizer(folder / "CosyVoice-BlankEN")
    (qwen / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": llm_kwargs["hidden_size"],
        "intermediate_size": llm_kwargs["intermediate_size"], "num_hidden_layers": llm_kwargs["num_hidden_layers"],
        "num_attention_heads": llm_kwargs["num_attention_heads"],
        "num_key_value_heads": llm_kwargs["num_key_value_heads"], "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "tie_word_embeddings": True, "vocab_size": llm_kwargs["vocab_size"]}))
    toy_s3_model(folder / "speech_tokenizer_v2.onnx", subsample=4, keep_dims=False, codes=N_SPEECH)
    toy_campplus(folder / "campplus.onnx", dim=SPK_DIM)
    return folder
