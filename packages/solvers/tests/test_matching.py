import itertools
import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.special import logsumexp

from structgrad.solvers import crossing_matching, enumerate_permutations, linear_assignment
from structgrad.solvers._validate import forbid_neg_inf
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


def test_crossing_takes_neg_inf_only_when_nothing_finite_is_left(backend: str) -> None:
    # The documented exception to the -inf rule: the greedy does not look ahead.
    x = np.array([[2.0, 1.0], [0.0, -np.inf]])
    np.testing.assert_array_equal(crossing_matching(x), np.eye(2))
    np.testing.assert_array_equal(crossing_matching(x.T), np.eye(2))


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


def test_compiled_equals_twin(assert_twin_agrees: Callable[..., None]) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(150, 7, 7)).astype(np.float64)
    x[x == 0] = -np.inf
    assert_twin_agrees(lambda: crossing_matching(x, return_trace=True))
    assert_twin_agrees(lambda: linear_assignment(x))


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


# Adversarial inputs for the Jonker-Volgenant kernel (and its fallback). Ties admit several
# optimal matchings, so these compare total weights (and -inf counts), not permutations.


def _scipy_value(x: np.ndarray) -> np.ndarray:
    return np.array([m[linear_sum_assignment(m, maximize=True)].sum() for m in x])


def _value(x: np.ndarray, perm: np.ndarray) -> np.ndarray:
    return np.where(perm != 0, x, 0.0).sum(axis=(-2, -1))


def _structured(name: str, n: int) -> np.ndarray:
    """Worst cases for JV's heuristics: ties everywhere, rank-1 and cyclic structure."""
    rng = np.random.default_rng(n)
    i = np.arange(n, dtype=np.float64)
    if name == "all equal":
        return np.full((2, n, n), 3.0)
    if name == "zero-one":
        return rng.integers(0, 2, size=(4, n, n)).astype(np.float64)
    if name == "small integers":
        return rng.integers(-3, 4, size=(4, n, n)).astype(np.float64)
    if name == "i*j":
        return np.stack([np.outer(i, i), -np.outer(i, i)])
    if name == "(i+j)%n":
        return np.stack([np.add.outer(i, i) % n, np.add.outer(i, i[::-1]) % n])
    if name == "rank-1":
        return np.einsum("bi,bj->bij", rng.normal(size=(4, n)), rng.normal(size=(4, n)))
    if name == "row-constant":
        return np.repeat(rng.normal(size=(4, n, 1)), n, axis=2)
    if name == "column-constant":
        return np.repeat(rng.normal(size=(4, 1, n)), n, axis=1)
    if name == "near ties":
        return 5.0 + 1e-10 * rng.normal(size=(4, n, n))
    raise AssertionError(name)


STRUCTURED = ["all equal", "zero-one", "small integers", "i*j", "(i+j)%n", "rank-1",
              "row-constant", "column-constant", "near ties"]  # fmt: skip


@pytest.mark.parametrize("name", STRUCTURED)
@pytest.mark.parametrize("n", [1, 2, 3, 9])
def test_assignment_structured_is_optimal(backend: str, name: str, n: int) -> None:
    x = _structured(name, n)
    got = linear_assignment(x)
    assert all(_is_permutation(p) for p in got)
    np.testing.assert_allclose(_value(x, got), _scipy_value(x), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", STRUCTURED)
@pytest.mark.parametrize("n", [17, 60])
def test_assignment_structured_is_optimal_large(name: str, n: int) -> None:
    x = _structured(name, n)
    got = linear_assignment(x)
    assert all(_is_permutation(p) for p in got)
    np.testing.assert_allclose(_value(x, got), _scipy_value(x), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dist", ["uniform", "normal", "integers 0..3", "exponential"])
@pytest.mark.parametrize("n", [4, 10, 25, 50, 60])
def test_assignment_random_value_matches_scipy(dist: str, n: int) -> None:
    rng = np.random.default_rng(n)
    x = {
        "uniform": lambda: rng.random((24, n, n)),
        "normal": lambda: rng.normal(size=(24, n, n)),
        "integers 0..3": lambda: rng.integers(0, 4, size=(24, n, n)).astype(np.float64),
        "exponential": lambda: rng.exponential(size=(24, n, n)) ** 3,
    }[dist]()
    got = linear_assignment(x)
    assert all(_is_permutation(p) for p in got)
    np.testing.assert_allclose(_value(x, got), _scipy_value(x), rtol=1e-12)


@pytest.mark.parametrize("scale", [1e4, 1e12])
@pytest.mark.parametrize("n", [2, 10, 40])
def test_assignment_large_magnitudes(backend: str, scale: float, n: int) -> None:
    if backend == "reference" and n > 10:
        pytest.skip("the twin is slow at n = 40; n <= 10 covers it")
    rng = np.random.default_rng(7)
    x = scale * rng.normal(size=(6, n, n))
    got = linear_assignment(x)
    np.testing.assert_allclose(_value(x, got), _scipy_value(x), rtol=1e-12)
    # A large offset: the differences that decide the optimum are ~1e-12 of the scores.
    y = scale + rng.normal(size=(6, n, n))
    got = linear_assignment(y)
    np.testing.assert_allclose(_value(y - scale, got), _scipy_value(y - scale), atol=1e-3)


def _neg_inf_optimum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: fewest -inf entries of a permutation, then the best finite sum (brute force)."""
    stack = enumerate_permutations(x.shape[-1])
    forbidden = np.isneginf(x)
    finite = np.where(forbidden, 0.0, x)
    counts = np.einsum("pij,bij->bp", stack, forbidden.astype(np.float64))
    sums = np.einsum("pij,bij->bp", stack, finite)
    fewest = counts.min(axis=1)
    best = np.where(counts == fewest[:, None], sums, -np.inf).max(axis=1)
    return fewest, best


def _check_neg_inf_optimum(x: np.ndarray, got: np.ndarray) -> None:
    fewest, best = _neg_inf_optimum(x)
    assert all(_is_permutation(p) for p in got)
    np.testing.assert_array_equal((got * np.isneginf(x)).sum(axis=(1, 2)), fewest)
    np.testing.assert_allclose(
        _value(np.where(np.isneginf(x), 0.0, x), got), best, rtol=1e-12, atol=1e-9
    )


@given(
    st.integers(1, 6).flatmap(
        lambda n: hnp.arrays(
            np.float64,
            (2, n, n),
            elements=st.sampled_from([-np.inf, -np.inf, -2.0, -1.0, 0.0, 0.5, 1.0, 3.0]),
        )
    )
)
def test_assignment_neg_inf_and_ties_brute_force(backend: str, x: np.ndarray) -> None:
    _check_neg_inf_optimum(x, linear_assignment(x))


@pytest.mark.parametrize("scale", [1.0, 1e12, 1e20, 1e300])
def test_assignment_neg_inf_patterns(backend: str, scale: float) -> None:
    rng = np.random.default_rng(11)
    n = 6
    x = scale * rng.normal(size=(12, n, n))
    x[0, :, 0] = x[0, 0, :] = -np.inf  # row 0 and column 0 forbidden (one -inf pair needed)
    x[1, :2, 1:] = -np.inf  # rows 0 and 1 may only use column 0: one -inf pair needed
    x[2] = np.where(np.eye(n, dtype=bool), x[2], -np.inf)  # only the identity is allowed
    x[3] = np.where(np.eye(n, dtype=bool), -np.inf, x[3])  # derangements only
    x[4, :, :] = -np.inf
    x[4, 0, 0] = scale  # a single finite entry
    x[5:][rng.random((7, n, n)) < 0.7] = -np.inf  # dense random patterns
    _check_neg_inf_optimum(x, linear_assignment(x))


@pytest.mark.parametrize("scale", [1e17, 1e20, 1e50, 1e300, 1e307])
def test_assignment_neg_inf_large_scores(backend: str, scale: float) -> None:
    """Huge finite scores: the -inf sentinel must stay below them (1e20 - 3 == 1e20)."""
    x = np.array([[[-np.inf, scale], [-np.inf, -np.inf]], [[-np.inf, -scale], [scale, -np.inf]]])
    np.testing.assert_array_equal(linear_assignment(x), [[[0, 1], [1, 0]]] * 2)
    rng = np.random.default_rng(3)
    for n in (2, 3, 5):
        y = scale * rng.uniform(-1.0, 1.0, size=(40, n, n))
        y[rng.random(y.shape) < 0.5] = -np.inf
        _check_neg_inf_optimum(y, linear_assignment(y))


@pytest.mark.parametrize("exponent", [-56, -300, -997])
def test_assignment_neg_inf_tiny_scores(backend: str, exponent: int) -> None:
    """Tiny finite scores beside -inf: the sentinel must not swamp them (-3 + 1e-17 == -3)."""
    x = np.array([[[-np.inf, -1e-17], [-np.inf, 1e-17]]])
    np.testing.assert_array_equal(linear_assignment(x), [np.eye(2)])
    rng = np.random.default_rng(7)
    for n in (2, 3, 5):
        y = rng.uniform(-1.0, 1.0, size=(40, n, n))
        y[rng.random(y.shape) < 0.5] = -np.inf
        # A power-of-two scale is exact: the optimum of y * 2**exponent is y's.
        _check_neg_inf_optimum(y, linear_assignment(np.ldexp(y, exponent)))


def test_assignment_neg_inf_large_n() -> None:
    """-inf at n = 30: fewest forbidden pairs (maximum bipartite matching), then scipy's value."""
    rng = np.random.default_rng(5)
    n = 30
    x = rng.normal(size=(10, n, n))
    x[rng.random(x.shape) < np.linspace(0.5, 0.97, 10)[:, None, None]] = -np.inf
    got = linear_assignment(x)
    for b in range(len(x)):
        assert _is_permutation(got[b])
        allowed = csr_matrix(np.isfinite(x[b]).astype(np.int8))
        fewest = n - int((maximum_bipartite_matching(allowed, perm_type="column") >= 0).sum())
        assert (got[b] * np.isneginf(x[b])).sum() == fewest
    values = forbid_neg_inf(x, terms=n)
    np.testing.assert_allclose(_value(values, got), _scipy_value(values), rtol=1e-12)


def test_compiled_equals_twin_on_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled kernel falls back to the twin's algorithm whenever optima are tied."""
    xs = [_structured(name, n) for name in STRUCTURED for n in (2, 5, 12)]
    rng = np.random.default_rng(4)
    xs.append(rng.normal(size=(20, 12, 12)))  # unique optima, solved by JV
    want = [linear_assignment(x) for x in xs]
    monkeypatch.setenv("STRUCTGRAD_SOLVERS_PURE_PYTHON", "1")
    for x, w in zip(xs, want, strict=True):
        np.testing.assert_array_equal(linear_assignment(x), w)


def _brute_value(x: np.ndarray) -> np.ndarray:
    """Per item: the best total of a permutation, in units of the largest score."""
    stack = enumerate_permutations(x.shape[-1])
    scaled = x / np.abs(x).max(axis=(-2, -1), keepdims=True)
    return (scaled[:, None] * stack[None]).sum((-2, -1)).max(-1)


@pytest.mark.parametrize("top", [1e308, 1.7e308])
def test_assignment_near_the_float64_limit(backend: str, top: float) -> None:
    # Differences of such scores overflow to inf: the search never ended (2 of
    # 256 random 2x2 items at 1e308) or returned a worse matching, silently.
    rng = np.random.default_rng(5)
    values = np.array([top, -top, 0.0, top / 2, -top / 2, top / 4])
    items = [rng.choice(values, size=(64, n, n)) for n in (2, 3, 4)]
    results: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: results.extend(map(linear_assignment, items)))
    worker.daemon = True  # a hang fails the test instead of the run
    worker.start()
    worker.join(timeout=120)
    assert len(results) == len(items), "linear_assignment did not return"
    for x, got in zip(items, results, strict=True):
        assert all(_is_permutation(p) for p in got)
        scaled = x / np.abs(x).max(axis=(-2, -1), keepdims=True)
        np.testing.assert_allclose((scaled * got).sum((-2, -1)), _brute_value(x), atol=1e-12)
    twin = torch.compile(linear_assignment, backend="eager", fullgraph=True)
    got_twin = twin(torch.from_numpy(items[1]))
    np.testing.assert_array_equal(got_twin.numpy(), results[1])
