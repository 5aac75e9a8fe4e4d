"""Two checks behind the Matrix-Tree marginals: the graphs connect, the sums hold.

A disconnected graph makes the Laplacian singular, but rounding rarely leaves
an exactly zero pivot, so the inverse alone does not reveal it: connectivity is
checked on the pattern of finite edges instead (only when some edge is
``-inf``; complete graphs connect).

Rounding is amplified by the conditioning of the Laplacian, up to about
``e^spread`` for weakly attached, tightly knit groups of vertices: float32 can
lose three or four digits within its 10-nat budget. The marginals obey exact
sum identities (arborescences: each vertex's in-marginals sum to 1; spanning
trees: ``n - 1`` edges). They measure the residual of the solve, not every
error (rounding in the Laplacian's diagonal can keep them), but the worst
cases break them: a float32 result that misses them is computed again in
float64, and an unclipped float64 one raises.

Also here: the vertex masks both checks read (the vertices inside each padded
graph, and the single-vertex sources).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from structgrad.solvers import InvalidScoresError

from ._laplacian import ILL_CONDITIONED
from ._numerics import tracing
from .checks import lengths_mask, validation_enabled

__all__ = ["check_reachable", "checked", "deviation_from", "one_hot", "vertex_mask"]

#: Largest deviation from a sum identity (relative to the sum) accepted from
#: float32 work: random graphs stay below 2e-6 (n = 5 ... 50), with the float32
#: rounding of the sum itself.
_FLOAT32_TOLERANCE = 1e-5
#: The same for float64, where only scores spreading beyond what float64 holds
#: (``max_range=math.inf``) come close: a deviation this large is no result.
_FLOAT64_TOLERANCE = 1e-3


def check_reachable(adjacency: Tensor, sources: Tensor, inside: Tensor | None, what: str) -> None:
    """Raise unless every vertex inside is reachable from ``sources`` along ``adjacency``.

    Args:
        adjacency: ``[..., n, n]`` bool, ``[i, j]`` for a (finite) edge ``i → j``.
        sources: ``[..., n]`` or ``[n]`` bool, where paths may start.
        inside: ``[..., n]`` bool vertices that must be reached (``None``: all).
        what: the function's name, for the message.

    Raises:
        ValueError: naming ``what`` if some vertex inside is not reached.
    """
    if not validation_enabled():
        return
    n = adjacency.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=adjacency.device)
    paths = (adjacency | eye).to(torch.float32)
    start = sources.to(torch.float32).expand(adjacency.shape[:-1]).unsqueeze(-2)

    def all_reached() -> bool:
        reached = torch.matmul(start, paths).squeeze(-2) > 0
        missed = ~reached if inside is None else inside & ~reached
        return not bool(missed.any())

    if all_reached():  # the common case: every vertex is a neighbour of a source
        return
    # (A | I)^(2^k) by repeated squaring holds the paths of up to 2^k edges;
    # products of 0/1 float32 matrices count exactly, clamped back to 0/1.
    for _ in range(max(1, math.ceil(math.log2(n)))):
        paths = torch.matmul(paths, paths).clamp_(max=1.0)
    if all_reached():
        return
    raise InvalidScoresError(f"{what}: the finite-score edges do not connect every graph")


def vertex_mask(
    lengths: Any, batch: tuple[int, ...], n: int, like: Tensor
) -> tuple[Tensor, Tensor] | tuple[None, None]:
    """``[..., n]`` boolean mask of the vertices inside each graph, and the ``[...]`` lengths.

    ``(None, None)`` without ``lengths``: every vertex is inside.
    """
    if lengths is None:
        return None, None
    inside = lengths_mask(lengths, batch, n, like.device)
    return inside, inside.sum(-1)


def one_hot(index: int, n: int, device: torch.device) -> Tensor:
    """``[n]`` boolean mask of the single vertex ``index`` (a source of :func:`check_reachable`)."""
    hot = torch.zeros(n, dtype=torch.bool, device=device)
    hot[index] = True
    return hot


def checked(
    solve: Callable[[torch.dtype], tuple[Tensor, ...]],
    deviation: Callable[[tuple[Tensor, ...]], float],
    work: torch.dtype,
    trusted: bool,
    what: str,
) -> tuple[Tensor, ...]:
    """``solve(work)``, checked by its sum identity unless ``trusted``.

    Args:
        solve: computes the marginals with Laplacians in the given dtype.
        deviation: the largest relative deviation of a result from its identity
            (NaN when the result is not finite).
        work: float32 or float64.
        trusted: the spread proves float64 accurate: only finiteness is checked.
        what: the function's name, for the message.

    Raises:
        ValueError: if the float64 result misses its identity (or is not finite).
    """
    out = solve(work)
    if tracing(out[0]):  # nothing can be read: the float64 result stands unchecked
        return out
    if trusted and work == torch.float64:
        # One reduction each: NaN or inf anywhere makes the sum non-finite
        # (marginals are at most 1); isfinite() would cost several passes.
        if not math.isfinite(sum(float(t.detach().sum()) for t in out)):
            raise InvalidScoresError(f"{what}: {ILL_CONDITIONED}")
        return out
    tolerance = _FLOAT32_TOLERANCE if work == torch.float32 else _FLOAT64_TOLERANCE
    if deviation(out) <= tolerance:  # False for NaN
        return out
    if work == torch.float32:  # rounding amplified beyond float32: once more in float64
        out = solve(torch.float64)
        if deviation(out) <= _FLOAT64_TOLERANCE:
            return out
    raise InvalidScoresError(f"{what}: {ILL_CONDITIONED}")


def deviation_from(values: Tensor, want: float) -> float:
    """``max |values - want|`` from one ``aminmax`` (NaN if any value is NaN; 0 if empty)."""
    if not values.numel():
        return 0.0
    lo, hi = (float(v) for v in torch.aminmax(values))
    return math.nan if math.isnan(lo + hi) else max(hi - want, want - lo)
