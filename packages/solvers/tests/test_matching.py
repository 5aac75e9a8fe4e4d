import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp

from structgrad.solvers import crossing_matching, enumerate_permutations, linear_assignment
from structgrad.testing import checks, oracles


def _is_permutation(p: np.ndarray) -> bool:
    return bool((p.sum(-1) == 1).all() and (p.sum(-2) == 1).all() and set(np.unique(p)) <= {0, 1})


@pytest.mark.parametrize("n", [1, 2, 3, 6, 12, 40])
def test_assignment_matches_scipy(backend: str, n: int) -> None:
    x = np.random.default_rng(n).normal(size=(8, n, n))
    got = linear_assignment(x)
    np.testing.assert_array_equal(got, oracles.scipy_linear_assignment(x))


@given(hnp.arrays(np.float64, (3, 5, 5), elements=st.integers(-2, 2).map(float)))
def test_assignment_ties_are_optimal(backend: str, x: np.ndarray) -> None:
    got = linear_assignment(x)
    for b in range(3):
        assert _is_permutation(got[b])
        _, best = oracles.brute_force_map("matching", x[b])
        assert oracles.score_of("matching", x[b], got[b]) == pytest.approx(best)


def test_assignment_avoids_neg_inf_when_possible(backend: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5, 5))
    x[rng.random(x.shape) < 0.6] = -np.inf
    stack = enumerate_permutations(5)
    got = linear_assignment(x)
    for b in range(len(x)):
        assert _is_permutation(got[b])
        forbidden = np.isneginf(x[b])
        assert (got[b] * forbidden).sum() == (stack * forbidden).sum(axis=(1, 2)).min()
    assert _is_permutation(linear_assignment(np.full((4, 4), -np.inf)))


@given(hnp.arrays(np.float64, (2, 5, 5), elements=st.integers(-2, 2).map(float)))
def test_crossing_is_the_greedy_order(backend: str, x: np.ndarray) -> None:
    perm, trace = crossing_matching(x, return_trace=True)
    for b in range(2):
        assert _is_permutation(perm[b])
        free = np.ones((5, 5), dtype=bool)
        for r, c in trace.edges[b]:
            best = x[b][free].max()
            first = np.flatnonzero(free & (x[b] == best))[0]
            assert (r, c) == divmod(int(first), 5)
            free[r, :] = free[:, c] = False
        assert all(perm[b, r, c] == 1 for r, c in trace.edges[b])


def test_crossing_trace_law() -> None:
    """On theta + Gumbel the traces have the product-of-softmaxes law."""
    rng = np.random.default_rng(3)
    n, samples = 3, 20000
    theta = rng.normal(size=(n, n))
    gumbel = -np.log(rng.exponential(size=(samples, n, n)))
    _, trace = crossing_matching(theta + gumbel, return_trace=True)
    counts: dict = {}
    for e in trace.edges:
        counts[e.tobytes()] = counts.get(e.tobytes(), 0) + 1
    tv, total = 0.0, 0.0
    for order in itertools.permutations(range(n * n), n):
        pairs = [divmod(i, n) for i in order]
        if len({r for r, _ in pairs}) < n or len({c for _, c in pairs}) < n:
            continue
        free = np.ones((n, n), dtype=bool)
        logp = 0.0
        for r, c in pairs:
            if not free[r, c]:
                logp = -np.inf
                break
            logp += theta[r, c] - logsumexp(theta[free])
            free[r, :] = free[:, c] = False
        p = float(np.exp(logp))
        total += p
        key = np.array(pairs, dtype=np.int64).tobytes()
        tv += abs(counts.get(key, 0) / samples - p)
    assert total == pytest.approx(1.0)
    assert 0.5 * tv < 0.03


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batching_layouts_and_torch(backend: str, dtype: type) -> None:
    x = np.random.default_rng(1).normal(size=(4, 6, 6)).astype(dtype)
    for fn in (linear_assignment, lambda a: crossing_matching(a, return_trace=True)):
        checks.assert_batching(fn, x, 2)
        checks.assert_torch_roundtrip(fn, x)
    checks.assert_layouts(linear_assignment, x)
    checks.assert_layouts(crossing_matching, x)


def test_compiled_equals_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(150, 7, 7)).astype(np.float64)
    x[x == 0] = -np.inf
    want = [*checks.as_arrays(crossing_matching(x, return_trace=True)), linear_assignment(x)]
    monkeypatch.setenv("STRUCTGRAD_SOLVERS_PURE_PYTHON", "1")
    got = [*checks.as_arrays(crossing_matching(x, return_trace=True)), linear_assignment(x)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("fn", [linear_assignment, crossing_matching])
@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.full((3, 3), np.nan), "NaN"),
        (np.full((3, 3), np.inf), r"\+inf"),
        (np.zeros((3, 2)), "square"),
        (np.zeros(3), "shape"),
        (np.zeros((0, 0)), "size >= 1"),
    ],
)
def test_bad_input(fn: object, x: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(x)  # type: ignore[operator]
