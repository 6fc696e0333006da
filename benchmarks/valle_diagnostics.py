"""Where a VALL-E run loses intelligibility: text reliance of the AR, the codec's ceiling per
number of codebooks, and what the NAR adds to the true first codebook.

    python benchmarks/valle_diagnostics.py exp/valle                 # 24 test items, best checkpoints
    python benchmarks/valle_diagnostics.py exp/valle --items 60 --batches 10
    python benchmarks/valle_diagnostics.py exp/valle --codec-only    # the codec ceiling alone (after tokenize)

Prints:
* text reliance: the AR's teacher-forced dev loss with each row's own phonemes and with another
  row's, different text (`other_text`). A small difference means the AR predicts codes from the
  acoustic context alone ("the loss looks fine but the output is noise").
* codec ceiling: WER (the evaluate stage's offline ASR and normalisation) of the test
  references encoded and decoded with their first k codebooks, k = 1 .. K.
* NAR: WER of the true first codebook completed by the trained NAR (greedy), against the first
  codebook alone and all true codebooks above.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ttsframe.codecs import build_codec
from ttsframe.codecs.base import encode_utterances
from ttsframe.data.audio import load_audio
from ttsframe.data.manifest import read_manifest
from ttsframe.eval.asr import build_asr
from ttsframe.eval.wer import error_rates
from ttsframe.models.valle.generate import generate_nar
from ttsframe.models.valle.loss import codebook_loss
from ttsframe.models.valle.synthesizer import ValleSynthesizer
from ttsframe.pipeline.synthesize import load_synthesizer, pair_prompts, prompt_item
from ttsframe.pipeline.train import build_data
from ttsframe.training.task_logging import other_text

STAGES = {"ar_stage": "train_ar", "nar_stage": "train_nar", "checkpoint": "best", "max_prompt_seconds": 3.0}


def text_reliance(ar, cfg, exp: Path, batches: int) -> tuple[float, float]:
    """Mean dev loss of the AR with the right phonemes and with another row's."""
    data = build_data(cfg, exp / "shards", int(cfg.seed), "codes")
    own, other, count = 0.0, 0.0, 0
    with torch.inference_mode():
        for number, b in enumerate(data.val_dataloader()):
            if number == batches:
                break
            replaced = other_text(b.tokens, b.token_lengths)
            if replaced is None:  # every row reads the same sentence
                continue
            own += float(codebook_loss(ar(b.tokens, b.token_lengths, b.codes, b.frame_lengths))["loss"])
            other += float(codebook_loss(ar(*replaced, b.codes, b.frame_lengths))["loss"])
            count += 1
    return own / max(count, 1), other / max(count, 1)


def fitted_codec(shard_dir: Path):
    """The tokenize stage's codec (its config.yaml), with its fitted state when it has one."""
    codec = build_codec(OmegaConf.load(shard_dir / "config.yaml").codec)
    if getattr(codec, "needs_fit", False):
        codec.load(shard_dir / "codec.safetensors")
    return codec


def codec_ceiling(codec, references: list, asr) -> dict[str, list[str]]:
    """ASR transcripts of each reference (T,) encoded, then decoded from its first k codebooks, k = 1 .. K."""
    heard: dict[str, list[str]] = {}
    for reference in references:
        codes = encode_utterances(codec, [reference], 600.0)[0]  # (K, T)
        for k in range(1, codes.shape[0] + 1):
            wav = codec.decode(codes[None, :k])[0].float().cpu().numpy()
            heard.setdefault(f"codec, first {k} codebook(s)", []).append(asr.transcribe([wav], codec.sample_rate)[0])
    return heard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", help="a valle run with train_ar, train_nar and shards")
    parser.add_argument("--items", type=int, default=24, help="test items for the WER figures")
    parser.add_argument("--batches", type=int, default=6, help="dev batches for the text-reliance loss")
    parser.add_argument("--codec-only", action="store_true",
                        help="only the codec ceiling, from the tokenize stage's shards (no trained models needed)")
    args = parser.parse_args()
    exp = Path(args.exp_dir)
    pairs = pair_prompts(read_manifest(str(exp / "data" / "test.jsonl")))[0][: args.items]
    asr = build_asr("faster_whisper", model=None, device="cpu")
    texts = [target.text for target, _ in pairs]
    if args.codec_only:
        codec = fitted_codec(exp / "shards")
        references = [load_audio(t.audio, codec.sample_rate, t.start, t.end)[0] for t, _ in pairs]
        for name, hypotheses in codec_ceiling(codec, references, asr).items():
            print(f"WER {error_rates(texts, hypotheses).wer:.3f}  {name}  ({len(texts)} test items)")
        return
    cfg = OmegaConf.load(exp / "train_nar" / "config.yaml")
    synth, _ = load_synthesizer(cfg, exp, STAGES, "cpu", ValleSynthesizer)
    ar, nar, codec, rate = synth.ar.eval(), synth.nar.eval(), synth.codec, synth.sample_rate

    own, other = text_reliance(ar, cfg, exp, args.batches)
    print(f"text reliance: AR dev loss {own:.3f} with its own text, {other:.3f} with another row's "
          f"(difference {other - own:.3f})")

    references = [load_audio(t.audio, rate, t.start, t.end)[0] for t, _ in pairs]
    heard = codec_ceiling(codec, references, asr)
    for (target, prompt), reference in zip(pairs, references):
        codes = encode_utterances(codec, [reference], 600.0)[0]  # (K, T)
        item = prompt_item(target, prompt, rate)
        prompt_tokens, prompt_codes = synth.encode_prompts([item])
        tokens = torch.cat([prompt_tokens[0], synth.text_tokens([target.text])[0]])[None]
        filled = generate_nar(nar, tokens, torch.tensor([tokens.shape[1]]), prompt_codes[0][None],
                              torch.tensor([prompt_codes[0].shape[1]]), codes[0][None],
                              torch.tensor([codes.shape[1]]))
        heard.setdefault("true codebook 1 + NAR", []).append(asr.transcribe(synth.decode([filled[0]]), rate)[0])
    for name, hypotheses in heard.items():
        print(f"WER {error_rates(texts, hypotheses).wer:.3f}  {name}  ({len(texts)} test items)")


if __name__ == "__main__":
    main()
