"""Independent oracles for the solvers: networkx, scipy and brute-force enumeration.

numpy in, numpy out, batched over leading dimensions by a plain Python loop.
They are slow on purpose: simple code that is easy to trust.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

import structgrad.solvers as solvers

__all__ = [
    "brute_force_map",
    "nx_max_arborescence",
    "nx_max_spanning_tree",
    "scipy_grid_shortest_path",
    "scipy_linear_assignment",
    "score_of",
]

Array = NDArray[Any]


def _batched(fn: Callable[[Array], Array], x: Array, core: int) -> Array:
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape((-1, *x.shape[x.ndim - core :]))
    out = np.stack([fn(item) for item in flat]) if len(flat) else np.zeros_like(flat)
    return out.reshape((*x.shape[: x.ndim - core], *out.shape[1:]))


def nx_max_spanning_tree(scores: Array) -> Array:
    """Maximum spanning tree by networkx (Kruskal) on the strict upper triangle.

    ``-inf`` edges are left out of the graph unless the finite edges cannot
    connect it, in which case they are added with a weight below every finite one.
    """

    def one(w: Array) -> Array:
        n = w.shape[0]
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        finite = w[np.isfinite(w)]
        low = (finite.min() - 1.0 - (finite.max() - finite.min())) if finite.size else 0.0
        for i in range(n):
            for j in range(i + 1, n):
                weight = w[i, j] if np.isfinite(w[i, j]) else low
                graph.add_edge(i, j, weight=weight)
        out = np.zeros((n, n))
        for u, v in nx.maximum_spanning_tree(graph).edges:
            out[u, v] = out[v, u] = 1
        return out

    return _batched(one, scores, 2)


def nx_max_arborescence(scores: Array, root: int = 0) -> Array:
    """Maximum spanning arborescence by networkx (edges into ``root`` and loops dropped).

    As the solvers: the fewest ``-inf`` edges first, then the best finite sum. A
    ``-inf`` edge weighs less than the spread of all finite edges together (so
    one fewer always wins); networkx itself mishandles ``-inf`` weights.
    """

    def one(w: Array) -> Array:
        n = w.shape[0]
        if n < 2:  # as the solver (networkx said "G has no nodes")
            raise ValueError(f"nx_max_arborescence needs n >= 2 vertices, got {n}")
        finite = w[np.isfinite(w)]
        spread = float(finite.max() - finite.min()) if finite.size else 0.0
        low = (float(finite.min()) if finite.size else 0.0) - n * (spread + 1.0)
        graph = nx.DiGraph()
        for i in range(n):
            for j in range(n):
                if i != j and j != root:
                    weight = float(w[i, j]) if np.isfinite(w[i, j]) else low
                    graph.add_edge(i, j, weight=weight)
        out = np.zeros((n, n))
        for u, v in nx.maximum_spanning_arborescence(graph, preserve_attrs=False).edges:
            out[u, v] = 1
        return out

    return _batched(one, scores, 2)


def scipy_linear_assignment(scores: Array) -> Array:
    """Maximum-weight perfect matching by ``scipy.optimize.linear_sum_assignment``."""

    def one(w: Array) -> Array:
        rows, cols = linear_sum_assignment(w, maximize=True)
        out = np.zeros_like(w)
        out[rows, cols] = 1
        return out

    return _batched(one, scores, 2)


def scipy_grid_shortest_path(costs: Array) -> Array:
    """Cheapest 8-neighbour top-left to bottom-right path by scipy's Dijkstra.

    The vertex cost of a cell is put on every edge entering it; the start cell's
    cost is common to all paths.
    """

    def one(c: Array) -> Array:
        h, w = c.shape
        rows, cols, vals = [], [], []
        for r in range(h):
            for q in range(w):
                for dr in (-1, 0, 1):
                    for dq in (-1, 0, 1):
                        nr, nq = r + dr, q + dq
                        if (dr or dq) and 0 <= nr < h and 0 <= nq < w:
                            rows.append(r * w + q)
                            cols.append(nr * w + nq)
                            # csgraph reads a zero weight as "no edge": a 1e-300 floor
                            # keeps zero-cost cells reachable without changing any cost.
                            vals.append(c[nr, nq] + 1e-300)
        graph = csr_matrix((vals, (rows, cols)), shape=(h * w, h * w))
        _, pred = dijkstra(graph, indices=0, return_predecessors=True)
        out = np.zeros_like(c)
        cur = h * w - 1
        while cur >= 0:
            out[cur // w, cur % w] = 1
            cur = pred[cur]
        return out

    return _batched(one, costs, 2)


def score_of(structure: str, scores: Array, solution: Array) -> Array:
    """The objective ``<scores, x>`` of solutions, batched.

    For ``"spanning_tree"`` each undirected edge counts once, from the strict
    upper triangle (what :func:`structgrad.solvers.max_spanning_tree` reads).
    Entries where ``x = 0`` do not count, even if the score there is ``-inf``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    solution = np.asarray(solution, dtype=np.float64)
    if structure == "spanning_tree":
        solution = np.triu(solution, k=1)
    if structure == "arborescence":
        solution = solution * (1 - np.eye(solution.shape[-1]))
    terms = np.where(solution != 0, scores, 0.0)  # 0/1 solutions; avoids 0 * -inf
    axes = (-1,) if structure in ("k_subset", "categorical") else (-2, -1)
    return np.sum(terms, axis=axes)


def brute_force_map(structure: str, scores: Array, **options: Any) -> tuple[Array, Array]:
    """Best configuration by enumeration, for one unbatched instance.

    Args:
        structure: ``"spanning_tree"``, ``"arborescence"`` (option ``root``),
            ``"k_subset"`` (option ``k``) or ``"matching"``.
        scores: the instance, ``[n]`` or ``[n, n]``.
        **options: as above.

    Returns:
        ``(best, value)``: the first maximiser in the enumerators' order and the
        best objective value (ties: any maximiser has this value).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[-1]
    if structure == "spanning_tree":
        stack = solvers.enumerate_spanning_trees(n)
    elif structure == "arborescence":
        stack = solvers.enumerate_arborescences(n, root=options.get("root", 0))
    elif structure == "k_subset":
        stack = solvers.enumerate_k_subsets(n, options["k"])
    elif structure == "matching":
        stack = solvers.enumerate_permutations(n)
    else:
        raise ValueError(f"brute_force_map: unknown structure {structure!r}")
    values = score_of(structure, np.broadcast_to(scores, stack.shape), stack)
    best = int(np.argmax(values))
    return stack[best], values[best]
