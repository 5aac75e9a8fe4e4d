from collections.abc import Callable

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from structgrad.solvers import max_spanning_tree
from structgrad.testing import checks, oracles


def _is_spanning_tree(adj: np.ndarray, size: int) -> bool:
    block = adj[:size, :size]
    graph = nx.from_numpy_array(block)
    rest_zero = adj.sum() == block.sum()
    return bool(np.array_equal(adj, adj.T) and nx.is_tree(graph) and rest_zero)


def _sort_key(scores: np.ndarray, u: int, v: int) -> tuple[float, int]:
    return (-float(scores[u, v]), u * scores.shape[-1] + v)


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_matches_networkx_and_brute_force(backend: str, n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(20, n, n))
    got = max_spanning_tree(x)
    np.testing.assert_array_equal(got, oracles.nx_max_spanning_tree(x))
    if n <= 6:
        for b in range(len(x)):
            _, best = oracles.brute_force_map("spanning_tree", x[b])
            assert oracles.score_of("spanning_tree", x[b], got[b]) == pytest.approx(best)


@given(hnp.arrays(np.float64, (3, 5, 5), elements=st.integers(-2, 2).map(float)))
def test_ties_are_optimal_and_follow_the_edge_order(backend: str, x: np.ndarray) -> None:
    adj, trace = max_spanning_tree(x, return_trace=True)
    want = oracles.score_of("spanning_tree", x, oracles.nx_max_spanning_tree(x))
    np.testing.assert_allclose(oracles.score_of("spanning_tree", x, adj), want)
    for b in range(3):
        keys = [_sort_key(x[b], u, v) for u, v in trace.edges[b]]
        assert keys == sorted(keys)


def test_reads_only_the_upper_triangle(backend: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 6))
    noisy = np.triu(x, 1) + np.tril(rng.normal(size=(6, 6)) * 100)
    np.testing.assert_array_equal(max_spanning_tree(noisy), max_spanning_tree(np.triu(x, 1)))


def test_neg_inf_edges_only_when_needed(backend: str) -> None:
    x = np.zeros((5, 5))
    x[np.triu_indices(5, 1)] = np.arange(10.0)
    x[0, :] = -np.inf  # vertex 0 can only attach through a forbidden edge
    adj = max_spanning_tree(x)
    assert _is_spanning_tree(adj, 5)
    assert adj[0].sum() == 1  # exactly one forbidden edge
    all_inf = np.full((2, 4, 4), -np.inf)
    assert all(_is_spanning_tree(a, 4) for a in max_spanning_tree(all_inf))


def test_trace_components_replay_the_edges(backend: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 7, 7))
    lengths = rng.integers(1, 8, size=30)
    adj, trace = max_spanning_tree(x, lengths=lengths, return_trace=True)
    for b, size in enumerate(lengths):
        assert _is_spanning_tree(adj[b], size)
        label = list(range(size))
        for t in range(6):
            if t >= size - 1:
                assert (trace.edges[b, t] == -1).all() and (trace.components[b, t] == -1).all()
                continue
            u, v = trace.edges[b, t]
            assert u < v and adj[b, u, v] == 1
            assert list(trace.components[b, t, :size]) == label
            assert (trace.components[b, t, size:] == -1).all()
            assert label[u] != label[v]  # Kruskal only joins different components
            lo, hi = sorted((label[u], label[v]))
            label = [lo if c == hi else c for c in label]


def test_padded_graphs_equal_their_unpadded_block(backend: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 8, 8))
    lengths = np.arange(1, 11) % 8 + 1
    adj, trace = max_spanning_tree(x, lengths=lengths, return_trace=True)
    for b, size in enumerate(lengths):
        if size == 1:
            assert adj[b].sum() == 0 and (trace.edges[b] == -1).all()
            continue
        small, small_trace = max_spanning_tree(x[b, :size, :size], return_trace=True)
        np.testing.assert_array_equal(adj[b, :size, :size], small)
        np.testing.assert_array_equal(trace.edges[b, : size - 1], small_trace.edges)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batching_layouts_and_torch(backend: str, dtype: type) -> None:
    x = np.random.default_rng(3).normal(size=(4, 6, 6)).astype(dtype)
    checks.assert_batching(lambda a: max_spanning_tree(a, return_trace=True), x, 2)
    checks.assert_layouts(max_spanning_tree, x)
    checks.assert_torch_roundtrip(lambda a: max_spanning_tree(a, return_trace=True), x)


def test_compiled_equals_twin_on_ties(
    assert_twin_agrees: Callable[..., None],
) -> None:
    x = np.random.default_rng(4).integers(0, 3, size=(200, 7, 7)).astype(np.float32)
    x[x == 0] = -np.inf
    lengths = np.random.default_rng(5).integers(1, 8, size=200)
    assert_twin_agrees(lambda: max_spanning_tree(x, lengths=lengths, return_trace=True))


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (np.full((3, 3), np.nan), {}, "NaN"),
        (np.full((3, 3), np.inf), {}, r"\+inf"),
        (np.zeros(3), {}, "shape"),
        (np.zeros((3, 4)), {}, "square"),
        (np.zeros((1, 1)), {}, "size >= 2"),
        (np.zeros((2, 3, 3)), {"lengths": [0, 3]}, "lengths"),
        (np.zeros((2, 3, 3)), {"lengths": [1, 2, 3]}, "batch shape"),
        (np.zeros((2, 3, 3)), {"lengths": [1.5, 2]}, "integers"),
        (np.array([["a", "b"], ["c", "d"]]), {}, "numeric"),
    ],
)
def test_bad_input(x: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        max_spanning_tree(x, **kwargs)
