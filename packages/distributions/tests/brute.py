"""Brute-force oracles: every quantity of a Gibbs law by enumerating its support."""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.distributions import structure


def support(name: str, n: int, lengths: int | None = None, **options: object) -> Tensor:
    """``[N, *event]`` float64 structures of size ``n`` (of size ``lengths``, zero-padded)."""
    size = n if lengths is None else lengths
    xs = structure(name).enumerate(size, **options) if size >= 2 or name == "k_subset" else None
    if xs is None:  # a single vertex: the empty tree
        return torch.zeros(1, n, n, dtype=torch.float64)
    pad = n - size
    if pad:
        xs = torch.nn.functional.pad(xs, (0, pad, 0, pad))
    return xs


def scores(theta: Tensor, xs: Tensor, name: str) -> Tensor:
    """``[..., N]`` ``<θ, x>`` for every structure (only the read entries; ``-inf`` if used)."""
    if name == "spanning_tree":
        xs = xs.triu(1)
    theta = theta.unsqueeze(-xs.dim())  # [..., 1, *event]
    used = xs > 0
    dims = tuple(range(-(xs.dim() - 1), 0))
    return torch.where(used, theta, torch.zeros_like(theta)).sum(dims)


def law(theta: Tensor, xs: Tensor, name: str) -> Tensor:
    """``[..., N]`` probabilities of the Gibbs law."""
    return torch.softmax(scores(theta, xs, name), -1)


def log_partition(theta: Tensor, xs: Tensor, name: str) -> Tensor:
    return torch.logsumexp(scores(theta, xs, name), -1)


def marginals(theta: Tensor, xs: Tensor, name: str) -> Tensor:
    p = law(theta, xs, name)  # [..., N]
    p = p.reshape(*p.shape, *([1] * (xs.dim() - 1)))  # [..., N, 1(, 1)]
    return (p * xs).sum(-xs.dim())


def entropy(theta: Tensor, xs: Tensor, name: str) -> Tensor:
    logp = torch.log_softmax(scores(theta, xs, name), -1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)


def kl(theta_p: Tensor, theta_q: Tensor, xs: Tensor, name: str) -> Tensor:
    lp = torch.log_softmax(scores(theta_p, xs, name), -1)
    lq = torch.log_softmax(scores(theta_q, xs, name), -1)
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lq), torch.zeros_like(p)).sum(-1)


def index_of(samples: Tensor, xs: Tensor) -> Tensor:
    """``[S]`` index in ``xs`` ``[N, *event]`` of each sample ``[S, *event]`` (``-1``: none)."""
    flat_s = samples.reshape(samples.shape[0], -1)
    flat_x = xs.reshape(xs.shape[0], -1).to(flat_s.dtype)
    match = (flat_s[:, None, :] == flat_x[None, :, :]).all(-1)  # [S, N]
    found = match.any(-1)
    return torch.where(found, match.float().argmax(-1), -1)


def total_variation(samples: Tensor, xs: Tensor, probs: Tensor) -> float:
    """TV distance between the empirical law of ``samples`` and ``probs`` over ``xs``."""
    idx = index_of(samples, xs)
    assert bool((idx >= 0).all()), "a sample is outside the support"
    counts = torch.bincount(idx, minlength=xs.shape[0]).to(probs.dtype)
    return 0.5 * float((counts / samples.shape[0] - probs).abs().sum())
