"""Maximum spanning tree of a complete undirected graph (Kruskal), batched."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from ._backend import kernel
from ._bridge import traced_op
from ._validate import batched, check_lengths

__all__ = ["SpanningTreeTrace", "max_spanning_tree"]


class SpanningTreeTrace(NamedTuple):
    """Execution trace of Kruskal's algorithm.

    Attributes:
        edges: ``[..., n-1, 2]`` int64, the tree edges ``(u, v)`` with ``u < v`` in
            the order Kruskal adds them; rows ``t >= length - 1`` are ``-1``.
        components: ``[..., n-1, n]`` int64, ``components[..., t, v]`` is the label
            of ``v``'s component *before* step ``t``, the label being the smallest
            vertex of the component; ``-1`` for padded steps and vertices.
    """

    edges: Any
    components: Any


@overload
def max_spanning_tree(
    scores: Any, *, lengths: Any = None, return_trace: Literal[False] = ...
) -> Any: ...
@overload
def max_spanning_tree(
    scores: Any, *, lengths: Any = None, return_trace: Literal[True]
) -> tuple[Any, SpanningTreeTrace]: ...
def max_spanning_tree(
    scores: Any, *, lengths: Any = None, return_trace: bool = False
) -> Any | tuple[Any, SpanningTreeTrace]:
    """Maximum spanning tree of complete undirected graphs.

    Only the strict upper triangle (``i < j``) of ``scores`` is read: the lower
    triangle and the diagonal are ignored, so non-symmetric perturbed scores can
    be passed as they are. Edges are ordered by score (descending), ties broken
    by the row-major index of ``(i, j)`` (ascending); under that strict order the
    tree is unique and is the one Kruskal returns. ``-inf`` scores sort last, so
    such edges are used only when the finite edges do not connect the graph.

    Args:
        scores: ``[..., n, n]`` edge scores, ``n >= 2`` (numpy or torch).
        lengths: optional ``[...]`` integer graph sizes in ``[1, n]``: graph ``b``
            uses vertices ``0 .. lengths[b] - 1``; the rest of its output is 0.
        return_trace: also return the :class:`SpanningTreeTrace`.

    Returns:
        The symmetric 0/1 adjacency ``[..., n, n]`` in the input's floating dtype
        (and the trace, if asked).

    Raises:
        ValueError: on NaN or +inf scores, a rank below 2, non-square scores,
            ``n < 2`` or lengths outside ``[1, n]``.
            The values are not read on a CUDA tensor (its device twin: no host
            synchronisation), where NaN or +inf give an unspecified 0/1 output.

    References:
        Kruskal, "On the shortest spanning subtree of a graph", 1956.
        Struminsky et al., "Leveraging Recursive Gumbel-Max Trick for
        Approximate Inference in Combinatorial Spaces", NeurIPS 2021,
        https://arxiv.org/abs/2110.15072 (the trace).
    """
    op = traced_op(scores, "max_spanning_tree_trace" if return_trace else "max_spanning_tree")
    if op is not None:
        return op(scores, lengths)
    return _on_host(scores, lengths, return_trace)


def _on_host(scores: Any, lengths: Any, return_trace: bool) -> Any:
    """The numpy path of :func:`max_spanning_tree` (torch tensors convert through the host)."""
    inp = batched(scores, "scores", core_ndim=2, square=True)
    flat = inp.flat
    size, n = flat.shape[0], flat.shape[1]
    lens = check_lengths(lengths, inp.batch_shape, n)
    adj = np.zeros_like(flat)
    steps = n - 1 if return_trace else 0
    edges = np.full((size, steps, 2), -1, dtype=np.int64)
    comps = np.full((size, steps, n), -1, dtype=np.int64)
    kernel("_kruskal", "_kruskal_ref").kruskal(flat, lens, adj, edges, comps, return_trace)
    shape = inp.batch_shape
    solution = inp.bridge.solution(adj.reshape((*shape, n, n)))
    if not return_trace:
        return solution
    trace = SpanningTreeTrace(
        inp.bridge.index(edges.reshape((*shape, n - 1, 2))),
        inp.bridge.index(comps.reshape((*shape, n - 1, n))),
    )
    return solution, trace
