"""Training throughput and model FLOPs utilisation (MFU) of every family, and bf16 vs fp32 agreement.

    python benchmarks/mfu.py --device cuda --size base            # a GPU node (peak from the GPU's name)
    python benchmarks/mfu.py --device cpu --size tiny --peak-tflops 0.2   # a quick look on a CPU

For each trained model (VALL-E AR and NAR, MELLE, CosyVoice LM and flow, DiTAR) at the family's
`tiny` or `base` preset, on one random batch (`--batch` rows of `--seconds` of speech):
* bf16 vs fp32: the loss of one forward in eval mode (same weights, batch and draws) with and
  without bf16 autocast, and their relative difference;
* a training step (forward, backward, AdamW; bf16 autocast with `--bf16`): ms per step and
  frames per second (real frames of the model's audio sequence);
* MFU = FLOPs per step / seconds per step / peak FLOP/s. FLOPs per step are counted, not
  estimated: torch.utils.flop_counter over one forward + backward (matmuls, convolutions and
  attention; elementwise work is not counted, as in the usual 6 N D accounting). The peak is
  `--peak-tflops`, or the dense bf16 figure of a known GPU (table below).
Random-init models and random data: speed and numerics only.
"""

from __future__ import annotations

import argparse

import torch
from cosyvoice_speed import N_SPEECH, SPK, TOKEN_RATE
from timing import random_mel_batch, timed
from torch.utils.flop_counter import FlopCounterMode

from ttsframe.models.cosyvoice.flow import CosyVoiceFlow
from ttsframe.models.cosyvoice.flow_loss import cfm_loss
from ttsframe.models.cosyvoice.lm import SpeechLM, lm_loss
from ttsframe.models.cosyvoice.presets import FAMILY_PRESETS
from ttsframe.models.ditar.loss import ditar_loss
from ttsframe.models.ditar.model import DiTAR
from ttsframe.models.ditar.presets import get_preset as ditar_preset
from ttsframe.models.melle.loss import melle_loss
from ttsframe.models.melle.model import Melle
from ttsframe.models.melle.presets import get_preset as melle_preset
from ttsframe.models.valle.loss import codebook_loss
from ttsframe.models.valle.model import ValleAR, ValleNAR
from ttsframe.models.valle.presets import get_preset as valle_preset

VOCAB, M, MEL_RATE, TOKENS_PER_SECOND = 100, 80, 22050 / 256, 14
K, N, CODE_RATE = 8, 1024, 75  # EnCodec-like codes for VALL-E
# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), matched against torch.cuda.get_device_name().
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0,
               "RTX 4090": 165.0, "V100": 125.0}


def gpu_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAK_TFLOPS.items() if key in name), None)


def mel_inputs(args, device):
    tokens, token_lengths, mel, frame_lengths = random_mel_batch(args.batch, args.seconds, device, VOCAB, M, MEL_RATE,
                                                                 TOKENS_PER_SECOND)
    return (tokens, token_lengths, mel, frame_lengths), int(frame_lengths.sum())


def code_inputs(args, device):
    gen = torch.Generator().manual_seed(0)
    frames, n_tokens = int(args.seconds * CODE_RATE), int(args.seconds * TOKENS_PER_SECOND)
    scale = torch.linspace(1.0, 0.7, args.batch)
    frame_lengths, token_lengths = (scale * frames).long(), (scale * n_tokens).long()
    tokens = torch.randint(1, VOCAB, (args.batch, n_tokens), generator=gen)
    codes = torch.randint(0, N, (args.batch, K, frames), generator=gen)
    return [x.to(device) for x in (tokens, token_lengths, codes, frame_lengths)], int(frame_lengths.sum())


def cosyvoice_inputs(args, device):
    b, n_text = args.batch, int(args.seconds * TOKENS_PER_SECOND)
    n_speech, n_mel = int(args.seconds * TOKEN_RATE), int(args.seconds * MEL_RATE)
    gen = torch.Generator().manual_seed(0)
    x = {"text": torch.randint(4, VOCAB, (b, n_text), generator=gen), "text_lengths": torch.full((b,), n_text),
         "speech": torch.randint(0, N_SPEECH, (b, n_speech), generator=gen), "speech_lengths": torch.full((b,), n_speech),
         "mel": torch.randn(b, n_mel, M, generator=gen), "mel_lengths": torch.full((b,), n_mel),
         "spk": torch.randn(b, SPK, generator=gen)}
    return {k: v.to(device) for k, v in x.items()}


def cases(args, device):
    """(name, model, loss_fn() -> scalar, real frames per step) for every trained model of the families."""
    size = args.size
    codes, code_frames = code_inputs(args, device)
    mels, mel_frames = mel_inputs(args, device)
    valle = valle_preset(f"valle_{size}", VOCAB, K, N)
    ar, nar = ValleAR(valle).to(device), ValleNAR(valle).to(device)
    melle = Melle(melle_preset(f"melle_{size}", VOCAB, M)).to(device)
    ditar = DiTAR(ditar_preset(f"ditar_{size}", VOCAB, M)).to(device)
    preset = FAMILY_PRESETS[f"cosyvoice_{size}"]
    lm = SpeechLM(preset.lm(VOCAB, N_SPEECH, SPK)).to(device)
    flow = CosyVoiceFlow(preset.flow(N_SPEECH, TOKEN_RATE, SPK)).to(device)
    x = cosyvoice_inputs(args, device)

    def drawn(fn):  # the same random draws (noise, times, NAR plans) on every call
        return lambda model: fn(model, torch.Generator(device=device).manual_seed(0))

    def lm_step(model, _):
        p = model.predict(x["text"], x["text_lengths"], x["speech"], x["speech_lengths"], x["spk"])
        return lm_loss(p.logits, p.targets)["loss"]

    return [
        ("valle_ar", ar, drawn(lambda m, g: codebook_loss(m(*codes))["loss"]), code_frames),
        ("valle_nar", nar, drawn(lambda m, g: codebook_loss(m(*codes, generator=g))["loss"]), code_frames),
        ("melle", melle, drawn(lambda m, g: melle_loss(m(*mels, generator=g))["loss"]), mel_frames),
        ("cosyvoice_lm", lm, drawn(lm_step), int(x["speech_lengths"].sum())),
        ("cosyvoice_flow", flow, drawn(lambda m, g: cfm_loss(m(x["speech"], x["speech_lengths"], x["mel"],
                                                                x["mel_lengths"], x["spk"], generator=g))),
         int(x["mel_lengths"].sum())),
        ("ditar", ditar, drawn(lambda m, g: ditar_loss(m(*mels, generator=g))["loss"]), mel_frames),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=("tiny", "base"), default="base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bf16", action="store_true", help="time the training step under bf16 autocast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s of the device, in TFLOP/s")
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = args.peak_tflops * 1e12 if args.peak_tflops else gpu_peak(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak_text = f"peak {peak / 1e12:g} TFLOP/s" if peak else "peak unknown (pass --peak-tflops): no MFU"
    print(f"device {device} ({name}), torch {torch.__version__}, preset size {args.size}, batch {args.batch} x "
          f"{args.seconds:g} s, step in {'bf16 autocast' if args.bf16 else 'fp32'}; {peak_text}")
    print("MFU = (FLOPs of one forward + backward, counted by torch.utils.flop_counter) / (seconds per step) / peak")
    torch.manual_seed(0)
    only = {n for n in args.only.split(",") if n}
    for label, model, loss_of, frames in cases(args, device):
        if only and label not in only:
            continue
        params = sum(p.numel() for p in model.parameters())
        model.eval()
        with torch.no_grad():
            fp32 = float(loss_of(model))
            with torch.autocast(device.type, dtype=torch.bfloat16):
                bf16 = float(loss_of(model))
        model.train()
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = loss_of(model)
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)

        with FlopCounterMode(display=False) as counter:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = loss_of(model)
            loss.backward()
        optim.zero_grad(set_to_none=True)
        flops = counter.get_total_flops()
        seconds = timed(step, device, args.repeats)
        mfu = f"MFU {flops / seconds / peak:6.1%}" if peak else "MFU n/a"
        print(f"{label:15s} {params / 1e6:8.1f} M params  loss fp32 {fp32:.4f} bf16 {bf16:.4f} (rel. diff "
              f"{abs(bf16 - fp32) / max(abs(fp32), 1e-8):.1e})  {seconds * 1e3:8.1f} ms/step  {frames / seconds:9.0f} "
              f"frames/s  {flops / 1e9:9.1f} GFLOP/step  {flops / seconds / 1e12:7.3f} TFLOP/s  {mfu}")
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
