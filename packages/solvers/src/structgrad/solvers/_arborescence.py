"""Maximum spanning arborescence (Chu-Liu/Edmonds) with its contraction trace, batched."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from ._backend import kernel
from ._validate import batched, check_int, check_lengths, forbid_neg_inf

__all__ = ["ArborescenceTrace", "max_arborescence"]


class ArborescenceTrace(NamedTuple):
    """Contraction trace of Chu-Liu/Edmonds.

    One step per super-vertex that chooses its best incoming edge: first every
    non-root vertex (in increasing order), then every contracted cycle, when it
    is formed. The candidates of step ``s`` are the edges ``(i, j)`` with ``i``
    outside ``members[s]`` and ``j`` inside it (never into the root).

    Attributes:
        edges: ``[..., S, 2]`` int64 ``(source, target)`` of the chosen edge of each
            step, in original vertex ids; ``-1`` past ``n_steps``.
        members: ``[..., S, n]`` bool, the vertices of the super-vertex of each step.
        n_steps: ``[...]`` int64, the number of steps, ``(length - 1) + #contractions``.

    ``S = max(1, 2n - 3)`` bounds the number of steps.
    """

    edges: Any
    members: Any
    n_steps: Any


@overload
def max_arborescence(
    scores: Any, *, root: int = 0, lengths: Any = None, return_trace: Literal[False] = ...
) -> Any: ...
@overload
def max_arborescence(
    scores: Any, *, root: int = 0, lengths: Any = None, return_trace: Literal[True]
) -> tuple[Any, ArborescenceTrace]: ...
def max_arborescence(
    scores: Any, *, root: int = 0, lengths: Any = None, return_trace: bool = False
) -> Any | tuple[Any, ArborescenceTrace]:
    """Maximum-weight spanning arborescence rooted at ``root``.

    Maximises the sum of the scores of the chosen edges; the diagonal and the
    edges into the root are ignored. ``-inf`` scores are forbidden edges: used
    only when no arborescence avoids them, and then as few as possible (sums
    are formed in float64 with a finite sentinel in their place, never NaN).
    Among equal candidates each super-vertex takes the in-edge with the lowest
    ``(source, target)`` in row-major order.

    For the recursive Gumbel-max trick run it on ``-E`` (the minimum
    arborescence of the exponentials ``E``): that trace has a
    product-of-softmaxes probability, which is a different distribution from the
    perturb-and-MAP one of the maximum arborescence of ``theta + Gumbel``.

    Args:
        scores: ``[..., n, n]`` scores with ``[i, j]`` for the edge ``i -> j``,
            ``n >= 2`` (numpy or torch).
        root: the root vertex, in ``[0, n)`` and below every length.
        lengths: optional ``[...]`` integer graph sizes in ``[root + 1, n]``.
        return_trace: also return the :class:`ArborescenceTrace`.

    Returns:
        The 0/1 adjacency ``[..., n, n]`` with ``[i, j] = 1`` for the edge
        ``i -> j`` in the input's floating dtype (and the trace, if asked).

    Raises:
        ValueError: on NaN or +inf scores, non-square scores, ``n < 2``, a root
            outside the graph or lengths outside ``[root + 1, n]``.

    References:
        Chu and Liu, 1965; Edmonds, "Optimum branchings", 1967.
        Struminsky et al., NeurIPS 2021, https://arxiv.org/abs/2110.15072 (§3.1).
    """
    inp = batched(scores, "scores", core_ndim=2, square=True)
    flat = inp.flat
    size, n = flat.shape[0], flat.shape[1]
    root = check_int(root, "root", 0, n - 1)
    lens = check_lengths(lengths, inp.batch_shape, n, minimum=root + 1)
    values = forbid_neg_inf(flat, terms=n)
    adj = np.zeros((size, n, n), dtype=np.float64)
    steps = max(1, 2 * n - 3) if return_trace else 0
    edges = np.full((size, steps, 2), -1, dtype=np.int64)
    members = np.zeros((size, steps, n), dtype=np.uint8)
    n_steps = np.zeros(size, dtype=np.int64)
    kernel("_edmonds", "_edmonds_ref").edmonds(
        values, lens, root, adj, edges, members, n_steps, return_trace
    )
    shape = inp.batch_shape
    solution = inp.bridge.solution(adj.reshape((*shape, n, n)))
    if not return_trace:
        return solution
    trace = ArborescenceTrace(
        inp.bridge.index(edges.reshape((*shape, steps, 2))),
        inp.bridge.index(members.astype(bool).reshape((*shape, steps, n))),
        inp.bridge.index(n_steps.reshape(shape)),
    )
    return solution, trace
