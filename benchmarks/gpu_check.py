"""Correctness of the CUDA paths, for a GPU node before a long run (prints figures, asserts nothing).

    python benchmarks/gpu_check.py            # needs a CUDA device

Prints:
* the environment: torch, CUDA, the GPU, whether flash_attn imports, which attention backend
  `attention(..., backend="auto")` takes for bf16 CUDA inputs;
* attention in bf16 on CUDA (causal, padded rows, a KV-cache decode step) against an fp32
  reference: max |error| at real positions;
* the transformer's KV-cache decoding against a full pass, fp32 and bf16 autocast, on CUDA;
* a VALL-E AR + NAR (mid size) forward + backward in bf16 autocast: finite loss and gradients;
* the spectral codec's k-means fit on CUDA run twice: identical codebooks (run-to-run determinism).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from ttsframe.modules import attention as attention_module
from ttsframe.modules.attention import attention
from ttsframe.modules.transformer import Transformer, TransformerConfig


def reference_attention(q, k, v, key_padding_mask) -> torch.Tensor:
    """fp32 causal softmax attention, bottom-right aligned (the framework's convention)."""
    q, k, v = q.float(), k.float(), v.float()
    tq, tk = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, H, Tq, Tk)
    causal = torch.arange(tk, device=q.device)[None] <= (torch.arange(tq, device=q.device)[:, None] + tk - tq)
    allowed = causal[None, None] & key_padding_mask[:, None, None, :]
    return scores.masked_fill(~allowed, -float("inf")).softmax(-1).nan_to_num() @ v


def check_attention(device: torch.device) -> None:
    gen = torch.Generator(device=device).manual_seed(0)
    b, h, t, d = 4, 8, 256, 64
    q, k, v = (torch.randn(b, h, t, d, device=device, generator=gen, dtype=torch.bfloat16) for _ in range(3))
    lengths = torch.tensor([256, 200, 129, 17], device=device)
    mask = torch.arange(t, device=device)[None] < lengths[:, None]  # (B, T)
    backend = "flash" if attention_module._flash_attn_module() and attention_module._flash_can_run(q) else "sdpa"
    print(f"attention: auto picks `{backend}` for bf16 CUDA inputs, head size {d}")
    full = attention(q, k, v, causal=True, key_padding_mask=mask)
    error = (full.float() - reference_attention(q, k, v, mask)).abs()[mask[:, None, :, None].expand_as(full)]
    print(f"  prefill, causal, padded rows: max |error| {error.max():.4f} vs fp32 (bf16 eps {2 ** -8:.4f})")
    step = attention(q[:, :, -1:], k, v, causal=True, key_padding_mask=mask)
    ref = reference_attention(q[:, :, -1:], k, v, mask)
    real = lengths == t
    print(f"  decode step over {t} cached keys: max |error| {(step.float() - ref)[real].abs().max():.4f}")
    sdpa = attention(q, k, v, causal=True, key_padding_mask=mask, backend="sdpa")
    gap = (full.float() - sdpa.float()).abs()[mask[:, None, :, None].expand_as(full)].max()
    print(f"  auto vs forced sdpa: max |difference| {gap:.4f}")


def check_kv_cache(device: torch.device) -> None:
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(d_model=256, n_heads=4, n_layers=4, ffn_dim=1024)).to(device).eval()
    x = torch.randn(2, 64, 256, device=device)
    positions = torch.arange(64, device=device)[None].expand(2, 64)
    for dtype in (torch.float32, torch.bfloat16):
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype is torch.bfloat16):
            full = model(x, positions)
            cache = model.new_cache(None)
            steps = [model(x[:, :16], positions[:, :16], cache=cache)]
            steps += [model(x[:, i: i + 1], positions[:, i: i + 1], cache=cache) for i in range(16, 64)]
            error = (torch.cat(steps, 1).float() - full.float()).abs().max()
        print(f"kv cache ({str(dtype).removeprefix('torch.')}): cached decode vs full pass, max |difference| "
              f"{error:.2e} (hidden std {full.float().std():.2f})")


def check_valle_bf16(device: torch.device) -> None:
    from valle_speed import valle_mid

    from ttsframe.models.valle.loss import codebook_loss
    from ttsframe.models.valle.model import ValleAR, ValleNAR

    config = valle_mid(100, 8, 1024)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 100, (4, 60), generator=gen).to(device)
    token_lengths = torch.tensor([60, 50, 40, 30], device=device)
    codes = torch.randint(0, 1024, (4, 8, 300), generator=gen).to(device)
    frame_lengths = torch.tensor([300, 250, 200, 150], device=device)
    for kind in (ValleAR, ValleNAR):
        torch.manual_seed(0)
        model = kind(config).to(device).train()
        extra = {"generator": torch.Generator(device=device).manual_seed(0)} if kind is ValleNAR else {}
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = codebook_loss(model(tokens, token_lengths, codes, frame_lengths, **extra))
        out["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        print(f"valle {kind.__name__} bf16 autocast: loss {out['loss'].item():.3f} (ln 1024 = {np.log(1024):.3f}), "
              f"gradients finite {bool(torch.isfinite(grads).all())}, norm {float(grads.norm()):.3f}")


def check_kmeans_determinism(device: torch.device) -> None:
    from ttsframe.codecs.spectral import Config, SpectralCodec

    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(22050 * 4).astype(np.float32) * np.hanning(22050 * 4).astype(np.float32)
             for _ in range(8)]
    books = []
    for _ in range(2):
        codec = SpectralCodec(Config(n_codebooks=4, codebook_size=256, fit_max_frames=2048, device=str(device)))
        codec.fit(audio)
        books.append(codec.codebooks.cpu())
    print(f"spectral codec fit on {device} twice: identical codebooks {torch.equal(books[0], books[1])}")


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device")
    device = torch.device("cuda")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, "
          f"flash_attn importable: {importlib.util.find_spec('flash_attn') is not None}")
    for check in (check_attention, check_kv_cache, check_valle_bf16, check_kmeans_determinism):
        check(device)


if __name__ == "__main__":
    main()
