"""Small helpers shared by the relaxations."""

from __future__ import annotations

import math
import operator
from typing import Any

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
    """Validate a ``[..., n, n]`` tensor and its values; return ``n``."""
    n = square_size(scores, name, min_size)
    check_values(scores, name)
    return n


def square_size(scores: Tensor, name: str = "scores", min_size: int = 2) -> int:
    """``n`` of a floating-point ``[..., n, n]`` tensor (its values are not read)."""
    if scores.dim() < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"{name} must have shape [..., n, n], got {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {scores.dtype}")
    n = scores.shape[-1]
    if n < min_size:
        raise ValueError(f"{name} needs n >= {min_size}, got n = {n}")
    return n


def check_values(scores: Tensor, name: str = "scores") -> bool:
    """Reject NaN and +inf (``-inf`` marks forbidden choices and is allowed).

    Returns:
        Whether some entry is ``-inf``.
    """
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {scores.dtype}")
    if math.isfinite(float(scores.detach().sum())):
        return False  # one reduction in the common case (isfinite() costs several passes)
    if torch.isnan(scores).any():
        raise ValueError(f"{name} contain NaN")
    if torch.isposinf(scores).any():
        raise ValueError(f"{name} contain +inf")
    return True


def hi_and_spread(values: Tensor) -> tuple[Tensor, float]:
    """``[...]`` largest entry over the last dim, and the largest (max - min finite) of any row."""
    lo, hi = torch.aminmax(values, dim=-1)
    gap = hi - finite_min(values, -1, lo)
    gap = torch.where(torch.isfinite(hi), gap, torch.zeros_like(hi))
    return hi, float(gap.max()) if gap.numel() else 0.0


def finite_min(values: Tensor, dim: int, lo: Tensor | None = None) -> Tensor:
    """Minimum over ``dim`` of the entries that are not ``-inf`` (``inf`` if none).

    ``lo``: the plain minimum over ``dim``, when the caller has it already.
    """
    lo = values.amin(dim=dim) if lo is None else lo
    if torch.isneginf(lo).any():  # forbidden entries: mask them out, one more pass
        lo = values.masked_fill(torch.isneginf(values), torch.inf).amin(dim=dim)
    return lo


def default_max_range(structure: str) -> float:
    """Default range ``R`` of log-potentials the Matrix-Tree relaxations keep.

    The Laplacians are formed in float64; a spread of ``S`` nats costs about
    ``S / ln 10`` digits to cancellation. The spanning-tree clip keeps the spread
    within ``2R`` (30 nats, 13 digits, for ``R = 15``, the value of the reference
    SST code, Paulus et al. 2020, App. D.2, whose plain floor loses the ``τ → 0``
    limit). The arborescence clip keeps every chain of nested cycles within
    ``R``; directed Laplacians cancel worse (measured: ~1e-9 error at 15 nats,
    ~3e-7 at 20), and its ``τ → 0`` residue is ``e^{-R/depth}``, so it takes 20.
    """
    return 20.0 if structure == "arborescence" else 15.0


def as_index(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` as a Python int in ``[lo, hi]`` (``hi=None``: no upper bound).

    Accepts anything with ``__index__`` (Python, numpy and 0-d integer torch
    values), not bools or floats.

    Raises:
        ValueError: naming ``name`` and the allowed range otherwise.
    """
    span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
    try:
        index = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        index = None
    if index is None or index < lo or (hi is not None and index > hi):
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    return index


def check_subset(scores: Tensor, k: int) -> tuple[int, int]:
    """Validate ``[..., n]`` scores and a subset size ``k`` in ``[0, n]``; return ``(n, k)``."""
    if scores.dim() < 1:
        raise ValueError("scores must have shape [..., n]")
    check_values(scores)
    n = scores.shape[-1]
    return n, as_index(k, "k", 0, n)
