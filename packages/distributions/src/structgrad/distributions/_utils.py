"""Shared helpers: input checks, NaN-free log-space sums, Gumbel noise, autograd marginals."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "check_int",
    "check_scores",
    "check_tau",
    "dot",
    "gradient",
    "gumbel_like",
    "lengths_mask",
    "logsumexp",
    "numpy_rng",
]


def check_scores(scores: Any, name: str, event_dim: int, *, square: bool = False) -> Tensor:
    """Return ``scores`` if it is a floating tensor of rank ``>= event_dim`` without NaN or +inf.

    Raises:
        ValueError: naming ``name`` and what was wrong.
    """
    if not isinstance(scores, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(scores).__name__}")
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {scores.dtype}")
    if scores.dim() < event_dim:
        shape = "[..., n, n]" if event_dim == 2 else "[..., n]"
        raise ValueError(f"{name} must have shape {shape}, got rank {scores.dim()}")
    if square and scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"{name} must be square in its last two dimensions, got {scores.shape}")
    if scores.numel():
        hi = scores.detach().max()  # NaN propagates: one reduction in the common case
        if not hi < math.inf:
            if bool(torch.isnan(scores).any()):
                raise ValueError(f"{name} contains NaN")
            raise ValueError(f"{name} contains +inf; scores must be finite or -inf")
    return scores


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as an ``int`` in ``[lo, hi]``, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {value}")
    return int(value)


def check_tau(tau: Any) -> float:
    """A positive finite temperature."""
    if isinstance(tau, Tensor):
        tau = float(tau)
    if not isinstance(tau, int | float) or not 0 < tau < math.inf:
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    return float(tau)


def lengths_mask(lengths: Any, batch: tuple[int, ...], n: int, device: Any, lo: int = 1) -> Tensor:
    """``[*batch, n]`` boolean mask of the vertices ``v < lengths`` of each graph.

    Args:
        lengths: integers broadcastable to ``batch``, each in ``[lo, n]``.
        batch: the batch shape.
        n: the padded size.
        device: device of the mask.
        lo: the smallest accepted length.

    Raises:
        ValueError: on non-integer lengths, a shape that does not broadcast, or a
            length outside ``[lo, n]``.
    """
    lens = torch.as_tensor(lengths, device=device)
    if lens.is_floating_point() or lens.is_complex() or lens.dtype == torch.bool:
        raise ValueError(f"lengths must hold integers, got {lens.dtype}")
    try:
        lens = lens.expand(batch)
    except RuntimeError:
        raise ValueError(
            f"lengths of shape {tuple(lens.shape)} do not match batch {batch}"
        ) from None
    if lens.numel() and (bool((lens < lo).any()) or bool((lens > n).any())):
        raise ValueError(f"lengths must lie in [{lo}, {n}], got {lens.tolist()}")
    return torch.arange(n, device=device) < lens.unsqueeze(-1)


def logsumexp(x: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """``log Σ exp(x)`` whose gradients (of every order) are 0, not NaN, on all-``-inf`` slices."""
    top = x.detach().amax(dim=dim, keepdim=True)
    # Max shift: exp(x - top) <= 1; an all -inf slice is shifted by 0 instead of -inf.
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.exp(x - top).sum(dim=dim, keepdim=True)
    positive = total > 0
    # Double where: log never sees 0, so no inf * 0 in the backward pass.
    out = torch.where(positive, torch.log(torch.where(positive, total, 1.0)) + top, -math.inf)
    dims = (dim,) if isinstance(dim, int) else dim
    return out.squeeze(dims)


def dot(theta: Tensor, x: Tensor, event_dim: int) -> Tensor:
    """``<θ, x>`` over the last ``event_dim`` dims, where ``-inf · 0 = 0``.

    A ``-inf`` entry of ``θ`` where ``x`` is nonzero gives ``-inf`` (a forbidden
    element was used); the gradient never sees a NaN.
    """
    finite = torch.isfinite(theta)
    prod = torch.where(finite, theta, torch.zeros_like(theta)) * x
    used = (~finite & (x != 0)).to(prod.dtype)
    dims = tuple(range(-event_dim, 0))
    forbidden = torch.where(used.sum(dims) > 0, -math.inf, 0.0)
    return prod.sum(dims) + forbidden.to(prod.dtype)


def gradient(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``∂ Σ fn(x) / ∂ x`` by autograd, itself differentiable when ``x`` requires grad.

    Marginals of an exponential family are the gradient of its log-partition;
    ``create_graph`` keeps them differentiable (entropy, KL, SST's backward).
    """
    with torch.enable_grad():
        leaf = x if x.requires_grad else x.detach().requires_grad_(True)
        out = fn(leaf)
        (grad,) = torch.autograd.grad(out.sum(), leaf, create_graph=x.requires_grad)
    return grad


def gumbel_like(
    x: Tensor, *, generator: torch.Generator | None = None, symmetric: bool = False
) -> Tensor:
    """Standard Gumbel noise ``-log(-log U)`` with the shape, dtype and device of ``x``.

    Args:
        x: a tensor; for ``symmetric`` it has shape ``[..., n, n]``.
        generator: optional ``torch.Generator`` (on ``x``'s device).
        symmetric: one draw per unordered pair ``i < j``, mirrored (zero diagonal).

    Returns:
        Noise like ``x``, always finite.
    """
    u = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    info = torch.finfo(x.dtype)
    # Clamped uniforms keep both logs finite (as torch's clamp_probs).
    g = -torch.log(-torch.log(u.clamp(min=info.tiny, max=1.0 - info.eps)))
    if symmetric:
        g = g.triu(1)
        g = g + g.transpose(-1, -2)
    return g


def numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A numpy ``Generator`` seeded from ``generator`` (or torch's global RNG): reproducible."""
    device = "cpu" if generator is None else generator.device
    seed = torch.randint(0, 2**62, (), generator=generator, device=device)
    return np.random.default_rng(int(seed))
