from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from structgrad.solvers import grid_shortest_path
from structgrad.testing import checks, oracles


def _is_path(mask: np.ndarray) -> bool:
    """A king-move path from the top-left to the bottom-right cell, without branches."""
    h, w = mask.shape
    cells = {tuple(c) for c in np.argwhere(mask == 1)}
    if (0, 0) not in cells or (h - 1, w - 1) not in cells:
        return False
    seen, cur, prev = {(0, 0)}, (0, 0), None
    while cur != (h - 1, w - 1):
        nbrs = [
            (cur[0] + a, cur[1] + b)
            for a in (-1, 0, 1)
            for b in (-1, 0, 1)
            if (a or b) and (cur[0] + a, cur[1] + b) in cells and (cur[0] + a, cur[1] + b) != prev
        ]
        nxt = [c for c in nbrs if c not in seen]
        if not nxt:
            return False
        prev, cur = cur, nxt[0]
        seen.add(cur)
    return seen == cells


def _cost(costs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (costs.astype(np.float64) * mask).sum(axis=(-2, -1))


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (4, 7), (12, 12), (18, 18)])
def test_matches_scipy_dijkstra(backend: str, shape: tuple[int, int]) -> None:
    costs = np.random.default_rng(sum(shape)).exponential(size=(6, *shape))
    got = grid_shortest_path(costs)
    want = oracles.scipy_grid_shortest_path(costs)
    np.testing.assert_allclose(_cost(costs, got), _cost(costs, want))
    assert all(_is_path(m) for m in got)


@given(hnp.arrays(np.float64, (2, 4, 5), elements=st.integers(0, 3).map(float)))
def test_ties_and_zero_costs(backend: str, costs: np.ndarray) -> None:
    got = grid_shortest_path(costs)
    want = oracles.scipy_grid_shortest_path(costs)
    np.testing.assert_allclose(_cost(costs, got), _cost(costs, want), atol=1e-9)
    assert all(_is_path(m) for m in got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batching_layouts_and_torch(backend: str, dtype: type) -> None:
    x = np.random.default_rng(1).exponential(size=(4, 6, 7)).astype(dtype)
    checks.assert_batching(grid_shortest_path, x, 2)
    checks.assert_layouts(grid_shortest_path, x)
    checks.assert_torch_roundtrip(grid_shortest_path, x)


def test_huge_costs_that_fit() -> None:
    """Costs near the limit whose path totals still fit in float64 give a real path."""
    x = np.full((4, 4), 1e306)
    x[1:3, :] = 0.0
    got = grid_shortest_path(x)
    assert got[0, 0] == got[3, 3] == 1
    assert got.sum() == 4  # the diagonal: 4 cells, two of them free


def test_compiled_equals_twin(assert_twin_agrees: Callable[..., None]) -> None:
    x = np.random.default_rng(2).integers(0, 3, size=(100, 9, 8)).astype(np.float32)
    assert_twin_agrees(lambda: grid_shortest_path(x))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.full((3, 3), np.nan), "NaN"),
        (np.full((3, 3), np.inf), r"\+inf; values must be finite$"),
        (np.full((3, 3), -np.inf), r"-inf; values must be finite$"),
        (-np.ones((3, 3)), "non-negative"),
        (np.zeros(3), r"shape \[\.\.\., H, W\]"),
        # Finite costs whose path total overflows float64 (it returned a broken mask).
        (np.array([[1e308, 0.0, 0.0], [0.0, 0.0, 1e308]]), "too large"),
        (np.full((2, 50, 50), 1e305), "too large"),
    ],
)
def test_bad_input(x: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        grid_shortest_path(x)
