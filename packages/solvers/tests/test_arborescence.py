import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp

from structgrad.solvers import enumerate_arborescences, max_arborescence
from structgrad.testing import checks, oracles


def _is_arborescence(adj: np.ndarray, root: int, size: int) -> bool:
    if adj[:, size:].any() or adj[size:].any() or adj[:, root].any() or np.diag(adj).any():
        return False
    if not all(adj[:size, v].sum() == 1 for v in range(size) if v != root):
        return False
    parent = {v: int(np.argmax(adj[:, v])) for v in range(size) if v != root}
    for v in parent:
        seen, u = 0, v
        while u != root and seen <= size:
            u, seen = parent[u], seen + 1
        if u != root:
            return False
    return True


@pytest.mark.parametrize(("n", "root"), [(2, 0), (2, 1), (4, 0), (5, 3), (9, 0)])
def test_matches_networkx_and_brute_force(backend: str, n: int, root: int) -> None:
    x = np.random.default_rng(n + root).normal(size=(15, n, n))
    got = max_arborescence(x, root=root)
    np.testing.assert_array_equal(got, oracles.nx_max_arborescence(x, root=root))
    if n <= 5:
        for b in range(len(x)):
            _, best = oracles.brute_force_map("arborescence", x[b], root=root)
            assert oracles.score_of("arborescence", x[b], got[b]) == pytest.approx(best)


@given(hnp.arrays(np.float64, (2, 5, 5), elements=st.integers(-2, 2).map(float)), st.integers(0, 4))
def test_ties_give_an_optimal_arborescence(backend: str, x: np.ndarray, root: int) -> None:
    got = max_arborescence(x, root=root)
    for b in range(2):
        assert _is_arborescence(got[b], root, 5)
        _, best = oracles.brute_force_map("arborescence", x[b], root=root)
        assert oracles.score_of("arborescence", x[b], got[b]) == pytest.approx(best)


def test_neg_inf_is_avoided_when_possible(backend: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5, 5))
    x[rng.random(x.shape) < 0.5] = -np.inf
    stack = enumerate_arborescences(5)
    adj = max_arborescence(x)
    for b in range(len(x)):
        assert _is_arborescence(adj[b], 0, 5)
        forbidden = np.isneginf(x[b])
        fewest = (stack * forbidden).sum(axis=(1, 2)).min()
        assert (adj[b] * forbidden).sum() == fewest
        if fewest == 0:
            _, best = oracles.brute_force_map("arborescence", np.where(forbidden, -1e9, x[b]))
            assert oracles.score_of("arborescence", x[b], adj[b]) == pytest.approx(best)
    everything = max_arborescence(np.full((3, 4, 4), -np.inf), root=1)
    assert all(_is_arborescence(a, 1, 4) for a in everything)


def _trace_log_prob(theta: np.ndarray, edges: np.ndarray, members: np.ndarray, steps: int) -> float:
    """log p(trace) = sum over steps of theta[edge] - logsumexp(theta over the candidates)."""
    total = 0.0
    n = theta.shape[0]
    for s in range(steps):
        inside = members[s]
        candidates = (~inside)[:, None] & inside[None, :] & ~np.eye(n, dtype=bool)
        total += theta[tuple(edges[s])] - logsumexp(theta[candidates])
    return total


def test_trace_law_of_exponential_minimum_arborescences() -> None:
    """On -E with E = Exp(1) / exp(theta) the traces have the product-of-softmaxes law."""
    rng = np.random.default_rng(7)
    n, samples = 4, 20000
    theta = rng.normal(size=(n, n))
    exps = rng.exponential(size=(samples, n, n)) / np.exp(theta)
    _, trace = max_arborescence(-exps, return_trace=True)
    keys = [
        (tuple(map(tuple, e[:k])), m[:k].tobytes())
        for e, m, k in zip(trace.edges, trace.members, trace.n_steps, strict=True)
    ]
    counts: dict = {}
    first: dict = {}
    for i, key in enumerate(keys):
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, i)
    probs = {
        key: np.exp(_trace_log_prob(theta, trace.edges[i], trace.members[i], int(trace.n_steps[i])))
        for key, i in first.items()
    }
    tv = 0.5 * sum(abs(counts[k] / samples - probs[k]) for k in counts)
    assert tv < 0.03
    assert sum(probs.values()) == pytest.approx(1.0, abs=0.02)


def test_trace_structure(backend: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 7, 7))
    lengths = rng.integers(3, 8, size=40)
    adj, trace = max_arborescence(x, root=2, lengths=lengths, return_trace=True)
    assert trace.edges.shape == (40, 11, 2) and trace.members.shape == (40, 11, 7)
    for b, size in enumerate(lengths):
        assert _is_arborescence(adj[b], 2, size)
        steps = int(trace.n_steps[b])
        assert steps >= size - 1
        assert (trace.edges[b, steps:] == -1).all() and not trace.members[b, steps:].any()
        tree_edges = {tuple(e) for e in np.argwhere(adj[b])}
        assert tree_edges <= {tuple(e) for e in trace.edges[b, :steps]}
        for s in range(steps):
            src, dst = trace.edges[b, s]
            inside = trace.members[b, s]
            assert inside[dst] and not inside[src] and not inside[2] and not inside[size:].any()
        singles = trace.members[b, : size - 1].sum(axis=1)
        assert (singles == 1).all()  # first one step per non-root vertex


def test_padded_graphs_equal_their_unpadded_block(backend: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 6, 6))
    lengths = np.array([1, 2, 3, 4, 5, 6, 2, 6])
    adj, trace = max_arborescence(x, lengths=lengths, return_trace=True)
    for b, size in enumerate(lengths):
        if size == 1:
            assert adj[b].sum() == 0 and trace.n_steps[b] == 0
            continue
        small, small_trace = max_arborescence(x[b, :size, :size], return_trace=True)
        np.testing.assert_array_equal(adj[b, :size, :size], small)
        k = int(small_trace.n_steps)
        assert trace.n_steps[b] == k
        np.testing.assert_array_equal(trace.edges[b, :k], small_trace.edges[:k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batching_layouts_and_torch(backend: str, dtype: type) -> None:
    x = np.random.default_rng(5).normal(size=(4, 6, 6)).astype(dtype)
    checks.assert_batching(lambda a: max_arborescence(a, root=1, return_trace=True), x, 2)
    checks.assert_layouts(max_arborescence, x)
    checks.assert_torch_roundtrip(lambda a: max_arborescence(a, return_trace=True), x)


def test_compiled_equals_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    x = rng.integers(-1, 3, size=(150, 7, 7)).astype(np.float64)
    x[x == -1] = -np.inf
    lengths = rng.integers(2, 8, size=150)
    want = checks.as_arrays(max_arborescence(x, root=1, lengths=lengths, return_trace=True))
    monkeypatch.setenv("STRUCTGRAD_SOLVERS_PURE_PYTHON", "1")
    got = checks.as_arrays(max_arborescence(x, root=1, lengths=lengths, return_trace=True))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_large_graph_is_an_arborescence(backend: str) -> None:
    x = np.random.default_rng(8).normal(size=(2, 60, 60))
    adj = max_arborescence(x)
    np.testing.assert_array_equal(adj, oracles.nx_max_arborescence(x))


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (np.full((3, 3), np.nan), {}, "NaN"),
        (np.zeros((3, 3)), {"root": 3}, "root"),
        (np.zeros((3, 3)), {"root": -1}, "root"),
        (np.zeros((3, 3)), {"root": 1.0}, "integer"),
        (np.zeros((2, 3, 3)), {"root": 2, "lengths": [2, 3]}, "lengths"),
        (np.zeros((3, 2)), {}, "square"),
        (np.zeros((1, 1)), {}, "size >= 2"),
    ],
)
def test_bad_input(x: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        max_arborescence(x, **kwargs)
