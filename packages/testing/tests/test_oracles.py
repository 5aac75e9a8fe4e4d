from typing import Any

import numpy as np
import pytest

from structgrad import solvers
from structgrad.solvers import enumerate_permutations
from structgrad.testing import checks, oracles


@pytest.mark.parametrize("n", [2, 4, 5])
def test_tree_oracles_agree_with_brute_force(n: int) -> None:
    x = np.random.default_rng(n).normal(size=(10, n, n))
    trees = oracles.nx_max_spanning_tree(x)
    arbs = oracles.nx_max_arborescence(x, root=n - 1)
    for b in range(10):
        _, best = oracles.brute_force_map("spanning_tree", x[b])
        assert oracles.score_of("spanning_tree", x[b], trees[b]) == pytest.approx(best)
        _, best = oracles.brute_force_map("arborescence", x[b], root=n - 1)
        assert oracles.score_of("arborescence", x[b], arbs[b]) == pytest.approx(best)


def test_assignment_oracle_agrees_with_brute_force() -> None:
    x = np.random.default_rng(0).normal(size=(10, 5, 5))
    got = oracles.scipy_linear_assignment(x)
    for b in range(10):
        best, value = oracles.brute_force_map("matching", x[b])
        np.testing.assert_array_equal(got[b], best)
        assert oracles.score_of("matching", x[b], got[b]) == pytest.approx(value)


def test_k_subset_brute_force_is_top_k() -> None:
    x = np.random.default_rng(1).normal(size=7)
    best, value = oracles.brute_force_map("k_subset", x, k=3)
    assert set(np.flatnonzero(best)) == set(np.argsort(-x)[:3])
    assert value == pytest.approx(np.sort(x)[-3:].sum())


def test_grid_oracle_on_a_tiny_grid() -> None:
    # Brute force over monotone and non-monotone paths is large; on 2x3 the optimum is clear.
    costs = np.array([[0.0, 9.0, 9.0], [1.0, 1.0, 0.0]])
    path = oracles.scipy_grid_shortest_path(costs)
    np.testing.assert_array_equal(path, [[1, 0, 0], [0, 1, 1]])


def test_score_of_ignores_unused_neg_inf() -> None:
    x = np.array([[0.0, -np.inf], [-np.inf, 2.0]])
    assert oracles.score_of("matching", x, np.eye(2)) == 2.0
    tree = np.ones((2, 2)) - np.eye(2)
    assert oracles.score_of("spanning_tree", np.full((2, 2), 1.5), tree) == 1.5


def test_unknown_structure() -> None:
    with pytest.raises(ValueError, match="unknown structure"):
        oracles.brute_force_map("nope", np.zeros(3))


def test_checks_catch_a_solver_that_ignores_the_batch() -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(enumerate_permutations(x.shape[-1])[0], x.shape).copy()

    def argmax_rows(x: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        np.put_along_axis(out, np.argmax(x, -1)[..., None], 1, -1)
        return out

    x = np.random.default_rng(2).normal(size=(4, 3, 3))
    checks.assert_batching(argmax_rows, x, 2)
    checks.assert_layouts(argmax_rows, x)
    with pytest.raises(AssertionError):
        checks.assert_batching(lambda a: broken(a) if a.ndim == 2 else broken(a)[..., ::-1], x, 2)


def test_checks_catch_a_solver_wrong_on_one_dtype_or_layout() -> None:
    # assert_layouts never called the solver with another dtype, and
    # assert_torch_roundtrip never passed a non-contiguous tensor.
    def argmax_rows(x: Any) -> Any:
        if type(x).__module__.startswith("torch"):
            out = x.new_zeros(x.shape)
            return out.scatter_(-1, x.argmax(-1, keepdim=True), 1.0)
        out = np.zeros_like(x)
        np.put_along_axis(out, np.argmax(x, -1)[..., None], 1, -1)
        return out

    def float32_wrong(x: Any) -> Any:
        out = argmax_rows(x)
        return out[..., ::-1].copy() if out.dtype == np.float32 else out

    def strided_wrong(x: Any) -> Any:
        out = argmax_rows(x)
        return out.flip(-1) if hasattr(x, "is_contiguous") and not x.is_contiguous() else out

    x = np.random.default_rng(2).normal(size=(4, 3, 3))
    checks.assert_layouts(argmax_rows, x)
    checks.assert_torch_roundtrip(argmax_rows, x)
    with pytest.raises(AssertionError, match="float32 vs float64"):
        checks.assert_layouts(float32_wrong, x)
    with pytest.raises(AssertionError, match="non-contiguous tensor"):
        checks.assert_torch_roundtrip(
            lambda a: strided_wrong(a) if hasattr(a, "is_contiguous") else argmax_rows(a), x
        )


def test_nx_max_arborescence_refuses_one_vertex_as_the_solver_does() -> None:
    with pytest.raises(ValueError, match="needs n >= 2"):
        oracles.nx_max_arborescence(np.zeros((1, 1)))


def test_nx_max_arborescence_with_forbidden_edges_matches_the_solver() -> None:
    # networkx mishandles -inf weights (it returned 0->1, 0->2 below).
    w = np.array([[-np.inf, -1.818, -0.782], [-1.140, -0.412, 1.312], [2.319, -np.inf, -np.inf]])
    assert oracles.nx_max_arborescence(w, root=0).tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 6))
        x = rng.normal(size=(n, n))
        x[rng.random((n, n)) < 0.4] = -np.inf
        root = int(rng.integers(0, n))
        got = oracles.nx_max_arborescence(x, root=root).astype(bool)
        want = solvers.max_arborescence(x, root=root).astype(bool)
        read = ~np.eye(n, dtype=bool)
        read[:, root] = False
        costs = []
        for m in (got, want):
            v = x[m & read]
            costs.append((int(np.isneginf(v).sum()), float(v[np.isfinite(v)].sum())))
        assert costs[0][0] == costs[1][0] and abs(costs[0][1] - costs[1][1]) < 1e-9
