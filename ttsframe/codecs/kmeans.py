"""Seeded k-means (k-means++ init, fixed Lloyd iterations) and residual VQ fitting, in torch."""

from __future__ import annotations

import torch

_CHUNK = 16384  # rows per distance computation: 16384 x 1024 floats = 64 MB
INIT_POINTS_PER_CENTROID = 16


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, D), centroids (C, D) -> (index (N,) long, squared distance (N,))."""
    c_sq = centroids.pow(2).sum(1)  # (C,)
    index, dist = [], []
    for part in x.split(_CHUNK):
        d = torch.addmm(c_sq, part, centroids.T, alpha=-2)  # (n, C): |c|^2 - 2 x.c
        best, idx = d.min(1)
        index.append(idx)
        dist.append((best + part.pow(2).sum(1)).clamp_min(0))
    if not index:
        return x.new_zeros(0, dtype=torch.long), x.new_zeros(0)
    return torch.cat(index), torch.cat(dist)


def kmeans_pp_init(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """x (N, D) -> k centroids (k, D) drawn by k-means++ (D^2 weighting) from a random subset of
    at most INIT_POINTS_PER_CENTROID * k points (the sequential draws dominate the cost)."""
    n = x.shape[0]
    if n > INIT_POINTS_PER_CENTROID * k:
        x = x[torch.randperm(n, generator=gen, device=gen.device)[: INIT_POINTS_PER_CENTROID * k].to(x.device)]
    x_sq = x.pow(2).sum(1)  # (n,)
    first = torch.randint(x.shape[0], (1,), generator=gen, device=gen.device).item()
    chosen = [first]
    dist = (x_sq - 2 * x @ x[first] + x_sq[first]).clamp_min(0)  # (n,)
    for _ in range(1, k):
        weights = dist if dist.sum() > 0 else torch.ones_like(dist)  # all points taken: uniform
        pick = torch.multinomial(weights.to(gen.device), 1, generator=gen).item()
        chosen.append(pick)
        dist = torch.minimum(dist, (x_sq - 2 * x @ x[pick] + x_sq[pick]).clamp_min(0))
    return x[chosen].clone()


def kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    """x (N, D) -> centroids (k, D) after `iters` Lloyd steps.

    An emptied cluster is moved to the point worst served by its centroid.
    """
    centroids = kmeans_pp_init(x, k, gen)
    for _ in range(iters):
        index, dist = nearest(x, centroids)
        sums = _cluster_sums(x, index, k)  # (k, D)
        counts = torch.bincount(index, minlength=k)  # (k,)
        empty = (counts == 0).nonzero().squeeze(1)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        if len(empty):
            worst = dist.topk(min(len(empty), len(dist))).indices
            centroids[empty[: len(worst)]] = x[worst]
    return centroids


def _cluster_sums(x: torch.Tensor, index: torch.Tensor, k: int) -> torch.Tensor:
    """x (N, D), index (N,) -> per-cluster sums (k, D). On CUDA a one-hot matmul, as index_add_
    uses float atomics there (run-to-run differences); on CPU index_add_ is deterministic and faster."""
    if x.is_cuda:
        return torch.nn.functional.one_hot(index, k).to(x.dtype).T @ x
    return x.new_zeros(k, x.shape[1]).index_add_(0, index, x)


def fit_rvq(x: torch.Tensor, n_codebooks: int, codebook_size: int, iters: int,
            gen: torch.Generator) -> tuple[torch.Tensor, list[float]]:
    """x (N, D) -> codebooks (K, C, D) fitted stage by stage on the residuals, and the mean
    squared residual after each stage (K values, non-increasing up to k-means noise)."""
    residual = x.clone()
    codebooks, mse = [], []
    for _ in range(n_codebooks):
        centroids = kmeans(residual, codebook_size, iters, gen)
        index, dist = nearest(residual, centroids)
        residual -= centroids[index]
        codebooks.append(centroids)
        mse.append(float(dist.mean() / x.shape[1]))
    return torch.stack(codebooks), mse


def rvq_encode(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """x (N, D), codebooks (K, C, D) -> codes (N, K)."""
    residual = x.clone()
    codes = []
    for centroids in codebooks:
        index, _ = nearest(residual, centroids)
        residual -= centroids[index]
        codes.append(index)
    return torch.stack(codes, 1) if codes else x.new_zeros(x.shape[0], 0, dtype=torch.long)


def rvq_decode(codes: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """codes (N, K') with K' <= K, codebooks (K, C, D) -> sum of codewords (N, D)."""
    out = codebooks.new_zeros(codes.shape[0], codebooks.shape[-1])
    for k in range(codes.shape[1]):
        out += codebooks[k][codes[:, k]]
    return out
