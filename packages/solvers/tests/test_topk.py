from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from structgrad.solvers import top_k
from structgrad.testing import checks, oracles


@given(
    hnp.arrays(np.float64, (4, 7), elements=st.integers(-3, 3).map(float)),
    st.integers(0, 7),
)
def test_matches_a_stable_sort(backend: str, x: np.ndarray, k: int) -> None:
    mask, trace = top_k(x, k, return_trace=True)
    want = np.argsort(-x, axis=-1, kind="stable")[:, :k]
    np.testing.assert_array_equal(trace.order, want)
    assert (mask.sum(-1) == k).all()
    for b in range(4):
        assert set(np.flatnonzero(mask[b])) == set(want[b])


@pytest.mark.parametrize(("n", "k"), [(1, 1), (5, 2), (8, 3), (8, 8)])
def test_brute_force(backend: str, n: int, k: int) -> None:
    x = np.random.default_rng(n * 10 + k).normal(size=(10, n))
    mask = top_k(x, k)
    for b in range(10):
        _, best = oracles.brute_force_map("k_subset", x[b], k=k)
        assert oracles.score_of("k_subset", x[b], mask[b]) == pytest.approx(best)


def test_neg_inf_only_when_needed(backend: str) -> None:
    x = np.array([[-np.inf, 1.0, -np.inf, 0.0, -np.inf]])
    mask, trace = top_k(x, 3, return_trace=True)
    np.testing.assert_array_equal(trace.order, [[1, 3, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 0, 1, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batching_layouts_and_torch(backend: str, dtype: type) -> None:
    x = np.random.default_rng(1).normal(size=(6, 9)).astype(dtype)
    checks.assert_batching(lambda a: top_k(a, 4, return_trace=True), x, 1)
    checks.assert_layouts(lambda a: top_k(a, 4), x)
    checks.assert_torch_roundtrip(lambda a: top_k(a, 4, return_trace=True), x)


def test_compiled_equals_twin(assert_twin_agrees: Callable[..., None]) -> None:
    x = np.random.default_rng(2).integers(0, 4, size=(300, 12)).astype(np.float32)
    x[x == 0] = -np.inf
    assert_twin_agrees(lambda: top_k(x, 5, return_trace=True))


@pytest.mark.parametrize(
    ("x", "k", "match"),
    [
        (np.zeros(3), 4, "k must lie"),
        (np.zeros(3), -1, "k must lie"),
        (np.zeros(3), 1.0, "integer"),
        (np.zeros(3), True, "integer"),
        (np.zeros(3), np.array(2.0), "k must be an integer"),  # numpy float: no __index__
        (np.zeros(3), np.array([2]), "k must be an integer"),
        (np.zeros(3), "2", "k must be an integer"),
        (np.zeros(3), np.True_, "k must be an integer"),
        (np.zeros((2, 0)), 0, "size >= 1"),
        (np.array(1.0), 1, "shape"),
        (np.array([np.nan, 1.0]), 1, "NaN"),
    ],
)
def test_bad_input(x: np.ndarray, k: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        top_k(x, k)  # type: ignore[arg-type]
