"""Small helpers shared by the relaxations."""

from __future__ import annotations

import torch
from torch import Tensor


def as_tau(tau: float | Tensor, like: Tensor) -> Tensor:
    """A positive temperature as a tensor with ``like``'s dtype and device.

    Raises:
        ValueError: if any temperature is not a positive finite number.
    """
    t = torch.as_tensor(tau, dtype=like.dtype, device=like.device)
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise ValueError(f"tau must be positive and finite, got {tau!r}")
    return t


def check_square(scores: Tensor, name: str = "scores", min_size: int = 2) -> int:
    """Validate a ``[..., n, n]`` tensor and return ``n``."""
    if scores.dim() < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"{name} must have shape [..., n, n], got {tuple(scores.shape)}")
    n = scores.shape[-1]
    if n < min_size:
        raise ValueError(f"{name} needs n >= {min_size}, got n = {n}")
    check_values(scores, name)
    return n


def check_values(scores: Tensor, name: str = "scores") -> None:
    """Reject NaN and +inf (``-inf`` marks forbidden choices and is allowed)."""
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {scores.dtype}")
    if torch.isfinite(scores).all():
        return  # one pass in the common case
    if torch.isnan(scores).any():
        raise ValueError(f"{name} contain NaN")
    if torch.isposinf(scores).any():
        raise ValueError(f"{name} contain +inf")


def safe_logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``logaddexp`` whose gradient stays finite (zero) where both inputs are ``-inf``.

    ``torch.logaddexp(-inf, -inf)`` is ``-inf`` but its gradient is NaN; the
    inputs are replaced by zeros there and the output is masked back to ``-inf``.
    """
    both = torch.isneginf(a) & torch.isneginf(b)
    if not both.any():
        return torch.logaddexp(a, b)
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    out = torch.logaddexp(torch.where(both, zero, a), torch.where(both, zero, b))
    return torch.where(both, torch.full_like(out, -torch.inf), out)


def safe_logsumexp(x: Tensor, dim: int) -> Tensor:
    """``logsumexp`` over ``dim`` with a finite (zero) gradient on all ``-inf`` slices."""
    empty = torch.isneginf(x).all(dim=dim, keepdim=True)
    if not empty.any():
        return torch.logsumexp(x, dim=dim)
    out = torch.logsumexp(torch.where(empty, torch.zeros_like(x), x), dim=dim)
    return torch.where(empty.squeeze(dim), torch.full_like(out, -torch.inf), out)


def default_max_range(dtype: torch.dtype) -> float:
    """Default spread of log-potentials the Matrix-Tree relaxations keep.

    The Laplacians are formed in float64; a spread of ``S`` nats costs about
    ``S / ln 10`` digits to cancellation. The spanning-tree clip keeps the spread
    within ``2R`` (30 nats, 13 digits, for ``R = 15``), the arborescence clip
    within ``R`` per column. The reference SST code also uses 15 (Paulus et al.
    2020, App. D.2), with a plain floor that loses the ``τ → 0`` limit.
    """
    return 15.0


def clip_range(w: Tensor, max_range: float | None, dims: tuple[int, ...]) -> Tensor:
    """Raise finite entries more than ``max_range`` below the max of ``dims`` to that floor.

    ``-inf`` entries (forbidden) stay ``-inf``; ``max_range=None`` picks
    :func:`default_max_range`, ``math.inf`` disables the clip.
    """
    limit = default_max_range(w.dtype) if max_range is None else float(max_range)
    if limit <= 0:
        raise ValueError(f"max_range must be positive, got {max_range!r}")
    if limit == float("inf"):
        return w
    top = w.amax(dim=dims, keepdim=True)
    bottom = (
        w.detach().masked_fill(w.detach() == -torch.inf, torch.inf).amin(dim=dims, keepdim=True)
    )
    if not bool(((top.detach() - bottom) > limit).any()):
        # Nothing would be raised (and no gradient rerouted): skip the clip.
        return w
    top = torch.where(torch.isneginf(top), torch.zeros_like(top), top)
    floor = top - limit
    return torch.where(torch.isneginf(w), w, torch.maximum(w, floor))


def check_subset(scores: Tensor, k: int) -> int:
    """Validate ``[..., n]`` scores and a subset size ``k`` in ``[0, n]``; return ``n``."""
    if scores.dim() < 1:
        raise ValueError("scores must have shape [..., n]")
    check_values(scores)
    n = scores.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"k must be an integer in [0, {n}], got {k!r}")
    return n
