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
    gains and weight-norm magnitudes, small for biases (the reference's own init leaves outputs
    near trivial: most convs at N(0, 0.01))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("original0", "weight_g", "alpha")) or (p.dim() == 1 and "norm" in name):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) * (scale / fan_in) ** 0.5)


def key_shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def write(out: Path, part: str, module: torch.nn.Module, io: dict[str, torch.Tensor], kwargs: dict,
          full: dict[str, list[int]]) -> None:
    tensors = {f"state.{k}": v.detach().contiguous() for k, v in module.state_dict().items()}
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


PARTS = {"hift": make_hift}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/cosyvoice2"))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for part in args.parts:
        PARTS[part](args.out)


if __name__ == "__main__":
    main()
