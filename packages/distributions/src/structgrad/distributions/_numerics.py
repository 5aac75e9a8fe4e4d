"""Numerical helpers: ranges of log-potentials and their floors, offsets, widening."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks_options import check_real, validation_enabled

__all__ = [
    "FLOAT32_SPREAD",
    "default_max_range",
    "device_syncs",
    "finite_min",
    "hi_and_spread",
    "range_limit",
    "tracing",
    "widened",
    "without_offset",
    "work_dtype",
]

#: Largest spread (nats) of log-potentials computed in float32 for float32 input:
#: measured errors on random graphs stay below 1e-6 (spanning trees and
#: arborescences, n = 10, 50); weakly attached groups lose up to about e^spread
#: roundings, the worst of which the sum identities catch (``_conditioning``); wider
#: spreads cancel more digits and run in float64.
FLOAT32_SPREAD = 10.0


def tracing(like: Tensor) -> bool:
    """Whether the call on ``like`` must not read values on the host.

    True while ``torch.compile`` traces it, and for a tensor off the CPU (where
    a read synchronises with the device) while value checks are off
    (:func:`~structgrad.distributions.checks.set_validation`). The choices that
    read values then take their safe side without looking: the spread counts
    as unbounded (the work dtype is float64, chosen from dtypes; the range clip
    runs and leaves narrow scores unchanged) and the conditioning retry is not
    needed. On the CPU a read costs no synchronisation, so eager keeps reading.
    """
    if torch.compiler.is_compiling():
        return True
    return not validation_enabled() and device_syncs(like)


def device_syncs(like: Tensor) -> bool:
    """Whether reading a value of ``like`` on the host waits for its device."""
    return like.device.type != "cpu"


def hi_and_spread(values: Tensor) -> tuple[Tensor, float]:
    """``[...]`` largest entry over the last dim, and the largest (max - min finite) of any row.

    While tracing the spread is not read: it is ``inf`` (see :func:`tracing`).
    """
    lo, hi = torch.aminmax(values, dim=-1)
    if tracing(values):
        return hi, math.inf
    gap = hi - finite_min(values, -1, lo)
    gap = torch.where(torch.isfinite(hi), gap, torch.zeros_like(hi))
    return hi, float(gap.max()) if gap.numel() else 0.0


def finite_min(values: Tensor, dim: int, lo: Tensor | None = None) -> Tensor:
    """Minimum over ``dim`` of the entries that are not ``-inf`` (``inf`` if none).

    ``lo``: the plain minimum over ``dim``, when the caller has it already.
    """
    lo = values.amin(dim=dim) if lo is None else lo
    # Forbidden entries: mask them out, one more pass.
    if tracing(values) or torch.isneginf(lo).any():
        lo = values.masked_fill(torch.isneginf(values), torch.inf).amin(dim=dim)
    return lo


def default_max_range(directed: bool) -> float:
    """Default range ``R`` of log-potentials the Matrix-Tree relaxations keep.

    The Laplacians are formed in float64; a spread of ``S`` nats costs about
    ``S / ln 10`` digits to cancellation. The spanning-tree clip keeps the spread
    within ``2R`` (30 nats, 13 digits, for ``R = 15``, the value of the reference
    SST code, Paulus et al. 2020, App. D.2, whose plain floor loses the ``τ → 0``
    limit). The arborescence clip keeps every chain of nested cycles within
    ``R``; directed Laplacians cancel worse (measured: ~1e-9 error at 15 nats,
    ~3e-7 at 20), and its ``τ → 0`` residue is ``e^{-R/depth}``, so it takes 20.

    Args:
        directed: arborescences (``True``) or undirected spanning trees.
    """
    return 20.0 if directed else 15.0


def range_limit(max_range: float | None, directed: bool) -> float:
    """The clip range ``R``: ``max_range``, or the default when ``None``.

    Raises:
        InputTypeError: for a non-number (a string, a bool).
        ValueError: unless the range is positive (NaN is not).
    """
    if max_range is None:
        return default_max_range(directed)
    return check_real(max_range, "max_range", lo=0.0, strict=True, finite=False)


def work_dtype(dtype: torch.dtype, spread: float) -> torch.dtype:
    """The dtype of the Laplacian: float32 inputs of moderate spread stay float32."""
    return torch.float32 if dtype == torch.float32 and spread <= FLOAT32_SPREAD else torch.float64


def without_offset(scores: Tensor, event_dim: int, read: Tensor | None = None) -> Tensor:
    """``scores`` less each instance's common offset, where subtracting it is exact.

    Where an instance's finite scores share a sign and lie within a factor 2
    of each other, subtracting the largest is exact (Sterbenz's lemma); the
    laws, MAPs and relaxations of structures with a fixed number of ones ignore
    it, and ``θ + G`` then keeps the noise's digits (in float32 at an offset
    of 1e7, spacing 1, the Gumbel noise would round away). Other instances are
    left as they are: a shift would lose the digits of scores far below it.

    Args:
        scores: ``[..., *event]`` scores (no NaN or ``+inf``).
        event_dim: number of trailing event dimensions.
        read: optional boolean mask broadcasting to ``scores``: the entries that
            decide the offset (e.g. a tree's upper triangle; the rest is shifted too).
    """
    if not scores.numel():
        return scores
    data = scores.detach()
    finite = torch.isfinite(data) if read is None else torch.isfinite(data) & read
    dims = tuple(range(-event_dim, 0))
    hi = torch.where(finite, data, -math.inf).amax(dims, keepdim=True)
    lo = torch.where(finite, data, math.inf).amin(dims, keepdim=True)
    exact = ((lo > 0) & (hi <= 2 * lo)) | ((hi < 0) & (lo >= 2 * hi))
    # No finite entry read (a padded one-vertex graph, n = 1): hi = -inf and
    # lo = +inf pass the test above, and θ - (-inf) would be +inf / NaN.
    exact &= torch.isfinite(hi)
    return scores - torch.where(exact, hi, torch.zeros_like(hi))


def widened(x: Tensor) -> Tensor:
    """``x`` in float64 (exact for narrower floats; float64 ``x`` as it is).

    Sums of Gumbel noise and scores are formed in it: in float32 at ``|θ| = 1e8``
    (spacing 8) the noise would round away, and equal scores would always go
    to the lowest index. Shifting the scores instead loses the digits of the
    ones far below the shift.
    """
    return x.to(torch.float64)
