from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from structgrad.solvers import binary_tree, enumerate_binary_trees
from structgrad.testing import checks


def _recursive(x: np.ndarray, lo: int, hi: int, parent: int, depth: int, out: dict) -> None:
    if lo >= hi:
        return
    m = lo + int(np.argmax(x[lo:hi]))
    out[m] = (parent, lo, hi, depth)
    _recursive(x, lo, m, m, depth + 1, out)
    _recursive(x, m + 1, hi, m, depth + 1, out)


@given(
    hnp.arrays(np.float64, (3, 8), elements=st.integers(-2, 2).map(float)),
    st.lists(st.integers(1, 8), min_size=3, max_size=3),
)
def test_matches_recursive_definition(backend: str, x: np.ndarray, lengths: list[int]) -> None:
    adj, trace = binary_tree(x, lengths=lengths, return_trace=True)
    for b, size in enumerate(lengths):
        nodes: dict = {}
        _recursive(x[b], 0, size, -1, 0, nodes)
        want = np.zeros((8, 8))
        for m, (parent, lo, hi, depth) in nodes.items():
            if parent >= 0:
                want[parent, m] = 1
            assert tuple(trace.spans[b, m]) == (lo, hi)
            assert trace.depth[b, m] == depth
        np.testing.assert_array_equal(adj[b], want)
        for i in range(size, 8):
            assert tuple(trace.spans[b, i]) == (i, i + 1) and trace.depth[b, i] == -1


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_every_tree_is_a_binary_search_tree_shape(backend: str, n: int) -> None:
    stack = {a.tobytes() for a in enumerate_binary_trees(n)}
    x = np.random.default_rng(n).normal(size=(400, n))
    seen = {a.tobytes() for a in binary_tree(x)}
    assert seen <= stack
    if n <= 3:
        assert seen == stack  # every shape is reachable


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batching_layouts_and_torch(backend: str, dtype: type) -> None:
    x = np.random.default_rng(1).normal(size=(4, 9)).astype(dtype)
    checks.assert_batching(lambda a: binary_tree(a, return_trace=True), x, 1)
    checks.assert_layouts(binary_tree, x)
    checks.assert_torch_roundtrip(lambda a: binary_tree(a, lengths=5, return_trace=True), x)


def test_long_sorted_sequence_does_not_recurse(backend: str) -> None:
    x = np.arange(3000.0)[None]  # a chain: depth n - 1
    _, trace = binary_tree(x, return_trace=True)
    assert trace.depth.max() == 2999


def test_compiled_equals_twin(assert_twin_agrees: Callable[..., None]) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(200, 10)).astype(np.float32)
    lengths = rng.integers(1, 11, size=200)
    assert_twin_agrees(lambda: binary_tree(x, lengths=lengths, return_trace=True))


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (np.array(1.0), {}, "shape"),
        (np.zeros((2, 3)), {"lengths": [0, 1]}, "lengths"),
        (np.zeros((2, 3)), {"lengths": [4, 1]}, "lengths"),
        (np.array([1.0, np.inf]), {}, r"\+inf"),
    ],
)
def test_bad_input(x: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        binary_tree(x, **kwargs)
