"""Perfect matchings of square score matrices: linear assignment and the crossing matching."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from ._backend import kernel
from ._bridge import traced_op
from ._validate import batched, forbid_neg_inf

__all__ = ["CrossingTrace", "crossing_matching", "linear_assignment"]


class CrossingTrace(NamedTuple):
    """Selection order of the greedy crossing matching.

    Attributes:
        edges: ``[..., n, 2]`` int64, the matched ``(row, column)`` pairs in the
            order they were taken.
    """

    edges: Any


def linear_assignment(scores: Any) -> Any:
    """Maximum-weight perfect matching (linear assignment) of square matrices.

    Solved exactly in float64 by Jonker-Volgenant (column reduction, augmenting
    row reduction, then shortest augmenting paths with dual potentials); an
    answer that the dual prices do not certify as the unique optimum (ties) is
    solved again by the O(n^3) shortest augmenting path method of the
    pure-Python twin. ``-inf`` entries are forbidden pairs: they are used only
    when no perfect matching avoids them, and then as few as possible. Among
    several optimal matchings the one found is deterministic (the same for the
    compiled kernel and its twin) but otherwise unspecified.

    Args:
        scores: ``[..., n, n]`` scores, ``n >= 1`` (numpy or torch).

    Returns:
        The permutation matrix ``[..., n, n]`` (``P[i, j] = 1`` if row ``i`` is
        matched to column ``j``) in the input's floating dtype.

    Raises:
        ValueError: on NaN or +inf scores, a rank below 2 or non-square scores.
            The values are not read on a CUDA tensor (its device twin: no host
            synchronisation), where NaN or +inf give an unspecified 0/1 output.

    References:
        Jonker and Volgenant, "A shortest augmenting path algorithm for dense
        and sparse linear assignment problems", Computing 38, 1987.
    """
    op = traced_op(scores, "linear_assignment")
    if op is not None:
        return op(scores)
    return _on_host(scores)


@overload
def crossing_matching(scores: Any, *, return_trace: Literal[False] = ...) -> Any: ...
@overload
def crossing_matching(scores: Any, *, return_trace: Literal[True]) -> tuple[Any, CrossingTrace]: ...
def crossing_matching(
    scores: Any, *, return_trace: bool = False
) -> Any | tuple[Any, CrossingTrace]:
    """Greedy "crossing" perfect matching.

    ``n`` times: take the largest still-available entry (ties to the lowest
    row-major index), match its row and column, and cross both out. This is not
    the maximum-weight matching; applied to Gumbel-perturbed scores it samples
    a matching whose trace has a product-of-softmaxes probability, the
    recursive Gumbel-max perfect matching. It takes a ``-inf`` entry only when
    no finite one is left, without looking ahead: it may use one that another
    perfect matching avoids (``[[2, 1], [0, -inf]]`` takes the 2, then the
    ``-inf``).

    Args:
        scores: ``[..., n, n]`` scores, ``n >= 1`` (numpy or torch).
        return_trace: also return the :class:`CrossingTrace`.

    Returns:
        The permutation matrix ``[..., n, n]`` in the input's floating dtype (and
        the trace, if asked).

    Raises:
        ValueError: on NaN or +inf scores, a rank below 2 or non-square scores.

    References:
        Struminsky et al., NeurIPS 2021, https://arxiv.org/abs/2110.15072 (§3.3).
    """
    op = traced_op(scores, "crossing_matching_trace" if return_trace else "crossing_matching")
    if op is not None:
        return op(scores)
    return _crossing_on_host(scores, return_trace)


def _on_host(scores: Any) -> Any:
    """The numpy path of :func:`linear_assignment` (torch tensors convert through the host)."""
    inp = batched(scores, "scores", core_ndim=2, square=True, min_size=1)
    n = inp.flat.shape[1]
    values = forbid_neg_inf(inp.flat, terms=n)
    perm = np.zeros(inp.flat.shape, dtype=inp.flat.dtype)  # calloc'd, unlike zeros_like
    kernel("_assignment", "_assignment_ref").assignment(values, perm)
    return inp.bridge.solution(perm.reshape((*inp.batch_shape, n, n)))


def _crossing_on_host(scores: Any, return_trace: bool) -> Any:
    """The numpy path of :func:`crossing_matching` (torch tensors convert through the host)."""
    inp = batched(scores, "scores", core_ndim=2, square=True, min_size=1)
    flat = inp.flat
    size, n = flat.shape[0], flat.shape[1]
    perm = np.zeros_like(flat)
    edges = np.zeros((size, n, 2), dtype=np.int64)
    kernel("_assignment", "_assignment_ref").crossing(flat, perm, edges)
    shape = inp.batch_shape
    solution = inp.bridge.solution(perm.reshape((*shape, n, n)))
    if not return_trace:
        return solution
    return solution, CrossingTrace(inp.bridge.index(edges.reshape((*shape, n, 2))))
