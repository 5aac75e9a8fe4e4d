import math

import networkx as nx
import numpy as np
import pytest

from structgrad.solvers import (
    enumerate_arborescences,
    enumerate_binary_trees,
    enumerate_k_subsets,
    enumerate_permutations,
    enumerate_spanning_trees,
)


def _unique(stack: np.ndarray) -> bool:
    return len({a.tobytes() for a in stack}) == len(stack)


@pytest.mark.parametrize("n", range(2, 8))
def test_spanning_trees(n: int) -> None:
    stack = enumerate_spanning_trees(n)
    assert stack.shape == (n ** (n - 2), n, n) and _unique(stack)
    for adj in stack[:: max(1, len(stack) // 50)]:
        assert np.array_equal(adj, adj.T) and nx.is_tree(nx.from_numpy_array(adj))


@pytest.mark.parametrize(("n", "root"), [(2, 0), (3, 2), (4, 1), (5, 0), (6, 3)])
def test_arborescences(n: int, root: int) -> None:
    stack = enumerate_arborescences(n, root=root)
    assert stack.shape == (n ** (n - 2), n, n) and _unique(stack)
    for adj in stack:
        assert adj[:, root].sum() == 0 and np.trace(adj) == 0
        assert all(adj[:, v].sum() == 1 for v in range(n) if v != root)
        graph = nx.from_numpy_array(adj, create_using=nx.DiGraph)
        assert nx.is_arborescence(graph)


@pytest.mark.parametrize(("n", "k"), [(1, 0), (1, 1), (5, 2), (8, 3), (8, 8), (10, 5)])
def test_k_subsets(n: int, k: int) -> None:
    stack = enumerate_k_subsets(n, k)
    assert stack.shape == (math.comb(n, k), n) and _unique(stack)
    assert (stack.sum(-1) == k).all()


@pytest.mark.parametrize("n", range(1, 7))
def test_permutations(n: int) -> None:
    stack = enumerate_permutations(n)
    assert stack.shape == (math.factorial(n), n, n) and _unique(stack)
    assert (stack.sum(-1) == 1).all() and (stack.sum(-2) == 1).all()


@pytest.mark.parametrize("n", range(1, 8))
def test_binary_trees(n: int) -> None:
    stack = enumerate_binary_trees(n)
    assert stack.shape == (math.comb(2 * n, n) // (n + 1), n, n) and _unique(stack)
    for adj in stack:
        assert (adj.sum(0) <= 1).all() and adj.sum(0).sum() == n - 1  # one root
        for p in range(n):
            kids = np.flatnonzero(adj[p])
            assert (kids < p).sum() <= 1 and (kids > p).sum() <= 1


def test_dtype_keyword() -> None:
    assert enumerate_k_subsets(4, 2, dtype=np.float32).dtype == np.float32
    assert enumerate_spanning_trees(4, dtype=np.int8).dtype == np.int8


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: enumerate_spanning_trees(1), "n must lie"),
        (lambda: enumerate_arborescences(4, root=4), "root"),
        (lambda: enumerate_k_subsets(3, 4), "k must lie"),
        (lambda: enumerate_permutations(0), "n must lie"),
        (lambda: enumerate_spanning_trees(12), "budget"),
        (lambda: enumerate_permutations(11), "budget"),
        (lambda: enumerate_k_subsets(4, 2.0), "integer"),
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
