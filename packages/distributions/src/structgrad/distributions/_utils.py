"""Shared helpers: NaN-free log-space sums, Gumbel noise, autograd marginals."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .checks import (
    InputTypeError,
    check_generator,
    check_shape,
    check_tensor,
    validation_enabled,
)

__all__ = [
    "divide_by_tau",
    "dot",
    "finite_shift",
    "gradient",
    "gumbel_like",
    "log_shifted",
    "logsumexp",
    "rand",
    "relaxation_input",
    "sample_gumbel",
    "sample_uniform",
]


def divide_by_tau(scores: Tensor, tau: Tensor) -> Tensor:
    """``scores / tau`` with ``-inf`` kept, and a finite gradient for a learned ``tau``.

    A ``-inf`` numerator makes ``tau``'s gradient NaN (0 · inf in the
    division's backward): where ``tau`` requires grad, those entries are divided
    as 0 and put back.

    Args:
        scores: ``[..., *event]`` scores, ``-inf`` for forbidden entries.
        tau: positive temperatures broadcasting to ``scores`` (:func:`checks.as_tau`).
    """
    if not tau.requires_grad:
        return scores / tau
    neg = torch.isneginf(scores)
    return torch.where(neg, -torch.inf, torch.where(neg, 0.0, scores) / tau)


# Quotients centred at a reference are clamped to this many nats: weights e^-700
# apart are 0 and 1 to the last digit of float64.
RESOLVED_NATS = 700.0


def relaxation_input(scores: Tensor, tau: Tensor, centre: Tensor | None = None) -> Tensor:
    """:func:`divide_by_tau` for a structure's relaxation, kept in range.

    Args:
        scores: ``[..., *event]`` scores, ``-inf`` for forbidden entries.
        tau: positive temperatures broadcasting to ``scores``.
        centre: a (detached) reference broadcasting to ``scores`` that the
            relaxation is invariant to subtracting and around which it resolves
            scores (the maximum for a softmax, the k-th largest score for
            k-subsets). It is subtracted first and the quotient clamped to
            ``±RESOLVED_NATS``: huge scores at a tiny ``tau`` (1e31 / 1e-8)
            neither overflow nor tie. ``None``: the plain quotient.

    Raises:
        ValueError: without ``centre``, a score whose quotient overflows the
            dtype upwards (checked while values are checked, see
            :func:`checks.validation_enabled`).
    """
    neg = torch.isneginf(scores)
    if centre is not None:
        shifted = scores - torch.where(torch.isfinite(centre), centre, 0.0)
        scaled = divide_by_tau(shifted, tau).clamp(-RESOLVED_NATS, RESOLVED_NATS)
        return torch.where(neg, -torch.inf, scaled)
    scaled = divide_by_tau(scores, tau)
    # Downwards an overflow is -inf, a weight exp makes 0 all the same; upwards
    # it would be +inf, which no relaxation takes.
    if validation_enabled() and bool(torch.isposinf(scaled).any()):
        hint = "" if scores.dtype == torch.float64 else "float64 scores or "
        raise ValueError(
            f"scores / tau overflows {scores.dtype} (scores up to "
            f"{scores.detach().abs().masked_fill(neg, 0).max().item():.3g}, tau down to "
            f"{tau.detach().min().item():.3g}): use {hint}a larger tau"
        )
    return scaled


def finite_shift(top: Tensor) -> Tensor:
    """A detached max shift, ``0`` where the maximum is not finite (an all-``-inf`` slice).

    With it ``exp(x - top) <= 1``, and an all ``-inf`` slice gives ``exp(-inf) = 0``
    rather than ``exp(-inf + inf) = NaN``.
    """
    top = top.detach()
    return torch.where(torch.isfinite(top), top, torch.zeros_like(top))


def log_shifted(total: Tensor, top: Tensor) -> Tensor:
    """``log(total) + top``: ``-inf`` where ``total = 0``, with NaN-free gradients there."""
    positive = total > 0
    # Double where: log never sees 0, so no inf * 0 in the backward pass.
    return torch.where(positive, torch.log(torch.where(positive, total, 1.0)) + top, -math.inf)


def logsumexp(x: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """``log Σ exp(x)`` whose gradients (of every order) are 0, not NaN, on all-``-inf`` slices."""
    top = finite_shift(x.amax(dim=dim, keepdim=True))
    out = log_shifted(torch.exp(x - top).sum(dim=dim, keepdim=True), top)
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


def value_and_gradient(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``fn(x)`` and ``∂ Σ fn(x) / ∂ x``, from one evaluation of ``fn``.

    Marginals of an exponential family are the gradient of its log-partition;
    ``create_graph`` keeps both differentiable (entropy, KL, SST's backward) when
    ``x`` requires grad; otherwise both come back detached.
    """
    with torch.enable_grad():
        leaf = x if x.requires_grad else x.detach().requires_grad_(True)
        out = fn(leaf)
        (grad,) = torch.autograd.grad(out.sum(), leaf, create_graph=x.requires_grad)
    return (out if x.requires_grad else out.detach()), grad


def gradient(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``∂ Σ fn(x) / ∂ x`` by autograd, itself differentiable when ``x`` requires grad."""
    return value_and_gradient(fn, x)[1]


def rand(
    shape: Sequence[int],
    *,
    dtype: torch.dtype,
    device: torch.device | str | None,
    generator: torch.Generator | None,
) -> Tensor:
    """``torch.rand`` that names ``generator`` only when there is one.

    Under ``torch.compile(dynamic=True)``, ``torch.rand(symbolic shape, generator=None)``
    fails to trace (torch 2.13); leaving the keyword out traces.
    """
    if generator is None:
        return torch.rand(shape, dtype=dtype, device=device)
    return torch.rand(shape, dtype=dtype, device=device, generator=generator)


def sample_uniform(
    shape: Sequence[int],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Uniforms clamped to ``[tiny, 1 - eps]`` so that logs of ``u`` and ``1 - u`` stay finite."""
    dtype = dtype or torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InputTypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    shape = check_shape(shape)
    check_generator(generator, device if device is not None else "cpu")
    u = rand(shape, dtype=dtype, device=device, generator=generator)
    info = torch.finfo(dtype)
    return u.clamp(min=info.tiny, max=1.0 - info.eps)


def sample_gumbel(
    shape: Sequence[int],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Standard Gumbel noise ``-log(-log U)`` of the given shape, always finite.

    Args:
        shape: output shape.
        dtype: floating dtype (default: torch's default dtype).
        device: device of the result.
        generator: optional ``torch.Generator`` (on ``device``).
    """
    u = sample_uniform(shape, dtype=dtype, device=device, generator=generator)
    return -torch.log(-torch.log(u))


def gumbel_like(
    x: Tensor, *, generator: torch.Generator | None = None, symmetric: bool = False
) -> Tensor:
    """Standard Gumbel noise with the shape, dtype and device of ``x``.

    Args:
        x: a tensor; for ``symmetric`` it has shape ``[..., n, n]``.
        generator: optional ``torch.Generator`` (on ``x``'s device).
        symmetric: one draw per unordered pair ``i < j``, mirrored (zero diagonal).
    """
    check_tensor(x, "x")
    g = sample_gumbel(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    if symmetric:
        g = g.triu(1)
        g = g + g.transpose(-1, -2)
    return g
