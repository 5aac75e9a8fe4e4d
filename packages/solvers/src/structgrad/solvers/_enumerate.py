"""Exhaustive enumeration of small structures: oracles for tests and exact gradients.

Every enumerator returns a stack ``[N, ...]`` of 0/1 arrays in a documented,
deterministic order and refuses sizes whose output would exceed
``MAX_ENTRIES`` numbers.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._validate import check_int

__all__ = [
    "enumerate_arborescences",
    "enumerate_binary_trees",
    "enumerate_k_subsets",
    "enumerate_permutations",
    "enumerate_spanning_trees",
]

MAX_ENTRIES = 2_000_000


def _check_budget(count: int, per_item: int, what: str) -> None:
    if count * per_item > MAX_ENTRIES:
        raise ValueError(
            f"{what}: {count} structures of {per_item} entries exceed the enumeration "
            f"budget of {MAX_ENTRIES} numbers; enumeration is meant for tiny sizes"
        )


def _prufer_edges(seq: tuple[int, ...], n: int) -> list[tuple[int, int]]:
    """Edges of the labelled tree encoded by a Prüfer sequence."""
    degree = [1] * n
    for v in seq:
        degree[v] += 1
    edges = []
    for v in seq:
        leaf = degree.index(1)  # smallest leaf
        edges.append((leaf, v))
        degree[leaf] -= 1
        degree[v] -= 1
    u, w = (i for i in range(n) if degree[i] == 1)
    edges.append((u, w))
    return edges


def enumerate_spanning_trees(n: int, *, dtype: DTypeLike = np.float64) -> NDArray[Any]:
    """All ``n^(n-2)`` spanning trees of the complete graph ``K_n``.

    Args:
        n: number of vertices, ``n >= 2``.
        dtype: dtype of the result.

    Returns:
        ``[n^(n-2), n, n]`` symmetric 0/1 adjacencies, in lexicographic order of
        their Prüfer sequences.
    """
    n = check_int(n, "n", 2, 64)
    count = n ** (n - 2)
    _check_budget(count, n * n, "enumerate_spanning_trees")
    out = np.zeros((count, n, n), dtype=dtype)
    for t, seq in enumerate(itertools.product(range(n), repeat=n - 2)):
        for u, v in _prufer_edges(seq, n):
            out[t, u, v] = out[t, v, u] = 1
    return out


def enumerate_arborescences(
    n: int, root: int = 0, *, dtype: DTypeLike = np.float64
) -> NDArray[Any]:
    """All ``n^(n-2)`` spanning arborescences of the complete digraph rooted at ``root``.

    Args:
        n: number of vertices, ``n >= 2``.
        root: the root vertex in ``[0, n)``.
        dtype: dtype of the result.

    Returns:
        ``[n^(n-2), n, n]`` 0/1 adjacencies with ``[i, j] = 1`` for the edge
        ``i -> j``, in lexicographic order of the parent arrays of the non-root
        vertices.
    """
    n = check_int(n, "n", 2, 64)
    root = check_int(root, "root", 0, n - 1)
    count = n ** (n - 2)
    _check_budget(count, n * n, "enumerate_arborescences")
    others = [v for v in range(n) if v != root]
    out = np.zeros((count, n, n), dtype=dtype)
    t = 0
    for parents in itertools.product(range(n), repeat=n - 1):
        parent = dict(zip(others, parents, strict=True))
        if any(p == v for v, p in parent.items()):
            continue
        if all(_reaches_root(v, parent, root, n) for v in others):
            for v, p in parent.items():
                out[t, p, v] = 1
            t += 1
    assert t == count
    return out


def _reaches_root(v: int, parent: dict[int, int], root: int, n: int) -> bool:
    for _ in range(n):
        if v == root:
            return True
        v = parent[v]
    return v == root


def enumerate_k_subsets(n: int, k: int, *, dtype: DTypeLike = np.float64) -> NDArray[Any]:
    """All ``C(n, k)`` subsets of size ``k`` of ``n`` items.

    Args:
        n: number of items, ``n >= 1``.
        k: subset size in ``[0, n]``.
        dtype: dtype of the result.

    Returns:
        ``[C(n, k), n]`` 0/1 masks, in lexicographic order of the sorted index tuples.
    """
    n = check_int(n, "n", 1, 10_000)
    k = check_int(k, "k", 0, n)
    count = math.comb(n, k)
    _check_budget(count, n, "enumerate_k_subsets")
    out = np.zeros((count, n), dtype=dtype)
    for t, idx in enumerate(itertools.combinations(range(n), k)):
        out[t, list(idx)] = 1
    return out


def enumerate_permutations(n: int, *, dtype: DTypeLike = np.float64) -> NDArray[Any]:
    """All ``n!`` permutation matrices.

    Args:
        n: size, ``n >= 1``.
        dtype: dtype of the result.

    Returns:
        ``[n!, n, n]`` with ``P[i, j] = 1`` if row ``i`` goes to column ``j``, in
        lexicographic order of the column sequences.
    """
    n = check_int(n, "n", 1, 64)
    count = math.factorial(n)
    _check_budget(count, n * n, "enumerate_permutations")
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64).reshape(count, n)
    out = np.zeros((count, n, n), dtype=dtype)
    out[np.arange(count)[:, None], np.arange(n)[None, :], perms] = 1
    return out


def _bst_shapes(lo: int, hi: int) -> list[list[tuple[int, int]]]:
    """Edge lists ``(parent, child)`` of every binary tree with in-order ``lo..hi-1``."""
    if lo >= hi:
        return [[]]
    shapes = []
    for root in range(lo, hi):
        for left in _bst_shapes(lo, root):
            for right in _bst_shapes(root + 1, hi):
                tree = list(left) + list(right)
                if root > lo:
                    tree.append((root, _root_of(left, lo, root)))
                if root + 1 < hi:
                    tree.append((root, _root_of(right, root + 1, hi)))
                shapes.append(tree)
    return shapes


def _root_of(edges: list[tuple[int, int]], lo: int, hi: int) -> int:
    children = {c for _, c in edges}
    (root,) = (v for v in range(lo, hi) if v not in children)
    return root


def enumerate_binary_trees(n: int, *, dtype: DTypeLike = np.float64) -> NDArray[Any]:
    """All ``Catalan(n)`` binary trees whose in-order traversal is ``0 .. n-1``.

    These are the trees the divide-and-conquer solver :func:`binary_tree` can
    return (left child < parent < right child).

    Args:
        n: sequence length, ``n >= 1``.
        dtype: dtype of the result.

    Returns:
        ``[Catalan(n), n, n]`` adjacencies with ``[parent, child] = 1``, ordered by
        root, then recursively by left subtree, then right subtree.
    """
    n = check_int(n, "n", 1, 64)
    count = math.comb(2 * n, n) // (n + 1)
    _check_budget(count, n * n, "enumerate_binary_trees")
    out = np.zeros((count, n, n), dtype=dtype)
    for t, tree in enumerate(_bst_shapes(0, n)):
        for p, c in tree:
            out[t, p, c] = 1
    return out
