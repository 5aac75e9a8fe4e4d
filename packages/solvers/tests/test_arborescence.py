"""max_arborescence: oracles (networkx, brute force), trace invariants and the trace law."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from structgrad.solvers import ArborescenceTrace, _edmonds, _edmonds_ref, max_arborescence

NEG = -np.inf


# ----------------------------------------------------------------------------- helpers


def check_arborescence(adj: np.ndarray, root: int, length: int) -> None:
    """0/1, zero outside the graph, one parent per non-root vertex, all reach the root."""
    n = adj.shape[-1]
    assert set(np.unique(adj)) <= {0.0, 1.0}
    assert not adj[length:].any() and not adj[:, length:].any()
    assert not np.diag(adj).any() and not adj[:, root].any()
    assert (adj[:length, :length].sum(0) == (np.arange(length) != root)).all()
    parent = adj[:length, :length].argmax(0)
    for v in range(length):
        seen = 0
        while v != root:
            v, seen = parent[v], seen + 1
            assert seen <= n, "cycle"


def pair_value(adj: np.ndarray, scores: np.ndarray) -> tuple[int, float]:
    """(minus the number of -inf edges used, sum of the finite scores used)."""
    used = scores[adj.astype(bool)].astype(np.float64)
    finite = np.isfinite(used)
    return -int((~finite).sum()), float(used[finite].sum())


def arborescences(length: int, root: int) -> list[np.ndarray]:
    """Every arborescence on vertices 0..length-1 rooted at root (parent arrays)."""
    others = [v for v in range(length) if v != root]
    found = []
    for parents in itertools.product(range(length), repeat=len(others)):
        par = dict(zip(others, parents, strict=True))
        if any(p == v for v, p in par.items()):
            continue

        def reaches_root(v: int, par: dict[int, int] = par) -> bool:
            for _ in range(length):
                if v == root:
                    return True
                v = par[v]
            return v == root

        if all(reaches_root(v) for v in others):
            adj = np.zeros((length, length))
            for v, p in par.items():
                adj[p, v] = 1
            found.append(adj)
    return found


def brute_best(scores: np.ndarray, root: int) -> tuple[int, float]:
    return max(pair_value(a, scores) for a in arborescences(scores.shape[0], root))


def networkx_best(scores: np.ndarray, root: int) -> np.ndarray:
    n = scores.shape[0]
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(
        (i, j, float(scores[i, j])) for i in range(n) for j in range(n) if i != j and j != root
    )
    adj = np.zeros((n, n))
    for i, j in nx.maximum_spanning_arborescence(graph).edges:
        adj[i, j] = 1
    return adj


def check_trace(scores: np.ndarray, adj: np.ndarray, trace: Any, root: int, length: int) -> None:
    """Replay the trace: each step's edge is its candidates' maximum of reduced scores."""
    edges, members, n_steps = (np.asarray(t) for t in trace)
    assert length - 1 <= n_steps <= max(0, 2 * length - 3)
    assert (edges[n_steps:] == -1).all() and not members[n_steps:].any()
    singles = [v for v in range(length) if v != root]
    for s, v in enumerate(singles):
        assert members[s].nonzero()[0].tolist() == [v]
    w = scores[:length, :length].astype(np.float64)
    cnt, val = -np.isneginf(w).astype(np.int64), np.where(np.isneginf(w), 0.0, w)
    offc, offv = np.zeros(length, np.int64), np.zeros(length)
    top: list[int] = []  # current super-vertices (steps)
    for s in range(n_steps):
        inside = members[s, :length]
        assert not members[s, length:].any() and not inside[root]
        if s >= len(singles):  # a contraction merges >= 2 current super-vertices
            merged = [t for t in top if (members[t, :length] & inside).any()]
            assert len(merged) >= 2
            assert (np.logical_or.reduce(members[merged, :length]) == inside).all()
            top = [t for t in top if t not in merged]
        top.append(s)
        best = None
        for i in range(length):
            for j in range(length):
                if inside[i] or not inside[j]:
                    continue
                key = (cnt[i, j] - offc[j], val[i, j] - offv[j])
                if best is None or key > best[0]:
                    best = (key, (i, j))
        assert best is not None and tuple(edges[s]) == best[1]
        offc[inside] += best[0][0]
        offv[inside] += best[0][1]
    chosen = {tuple(e) for e in edges[:n_steps]}
    assert {tuple(e) for e in np.argwhere(adj)} <= chosen


def trace_log_prob(theta: np.ndarray, edges: np.ndarray, members: np.ndarray) -> float:
    """log p(T) = Σ_steps θ[edge] - logsumexp(θ over the step's candidates), in log space."""
    total = 0.0
    for s in range(len(edges)):
        inside = members[s]
        cand = theta[np.ix_(~inside, inside)].ravel()  # the root is never inside
        peak = cand.max()
        total += theta[tuple(edges[s])] - (peak + np.log(np.exp(cand - peak).sum()))
    return total


def run_both(scores: np.ndarray, lengths: np.ndarray, root: int) -> list[tuple[np.ndarray, ...]]:
    """Call the compiled kernel and its twin directly on the same input."""
    results: list[tuple[np.ndarray, ...]] = []
    size, n = scores.shape[0], scores.shape[-1]
    steps = max(1, 2 * n - 3)
    for module in (_edmonds, _edmonds_ref):
        out = np.zeros_like(scores)
        edges = np.full((size, steps, 2), -1, dtype=np.int64)
        members = np.zeros((size, steps, n), dtype=np.uint8)
        n_steps = np.zeros(size, dtype=np.int64)
        module.edmonds(scores, lengths, root, out, edges, members, n_steps)
        results.append((out, edges, members, n_steps))
    return results


small_scores = st.integers(2, 5).flatmap(
    lambda n: hnp.arrays(
        np.float64,
        (n, n),
        elements=st.sampled_from([NEG, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
        | st.floats(-4, 4, allow_nan=False, width=32),
    )
)


# ----------------------------------------------------------------------------- oracles


def test_enumerator_counts() -> None:
    for n in range(2, 6):  # Cayley: n^(n-2) arborescences with a given root
        assert len(arborescences(n, root=n - 1)) == n ** (n - 2)


@pytest.mark.parametrize("seed", range(4))
def test_matches_networkx(backend: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (2, 3, 5, 8, 13):
        scores = rng.normal(size=(n, n))
        root = int(rng.integers(n))
        adj, trace = max_arborescence(scores, root=root, return_trace=True)
        check_arborescence(adj, root, n)
        check_trace(scores, adj, trace, root, n)
        expected = networkx_best(scores, root)
        np.testing.assert_array_equal(adj, expected)  # distinct scores: unique optimum


def test_matches_networkx_deep_nesting(backend: str) -> None:
    # every vertex prefers its successor: n - 2 nested contractions of 2-cycles
    n = 30
    i = np.arange(n)
    scores = -np.abs(i[:, None] - i[None, :]) + 0.5 * (i[:, None] > i[None, :])
    scores = scores + np.random.default_rng(0).normal(size=(n, n)) * 1e-3
    adj, trace = max_arborescence(scores, return_trace=True)
    assert trace.n_steps == 2 * n - 3
    check_trace(scores, adj, trace, 0, n)
    np.testing.assert_array_equal(adj, networkx_best(scores, 0))


@given(scores=small_scores, data=st.data())
def test_brute_force(scores: np.ndarray, data: st.DataObject) -> None:
    n = scores.shape[0]
    root = data.draw(st.integers(0, n - 1))
    for module in ("compiled", "reference"):
        adj, trace = _public(module, scores, root=root, return_trace=True)
        check_arborescence(adj, root, n)
        check_trace(scores, adj, trace, root, n)
        got, best = pair_value(adj, scores), brute_best(scores, root)
        assert got[0] == best[0]
        assert got[1] == pytest.approx(best[1], abs=1e-9)


def _public(module: str, scores: Any, **kwargs: Any) -> Any:
    """Public call on one backend (hypothesis cannot use the monkeypatch fixture)."""
    import os

    from structgrad.solvers._backend import ENV_VAR

    old = os.environ.pop(ENV_VAR, None)
    if module == "reference":
        os.environ[ENV_VAR] = "1"
    try:
        return max_arborescence(scores, **kwargs)
    finally:
        os.environ.pop(ENV_VAR, None)
        if old is not None:
            os.environ[ENV_VAR] = old


@given(scores=small_scores, data=st.data())
def test_compiled_equals_reference(scores: np.ndarray, data: st.DataObject) -> None:
    n = scores.shape[0]
    root = data.draw(st.integers(0, n - 1))
    batch = np.stack([scores, scores.T.copy(), np.round(scores)])
    lengths = np.array([n, n, data.draw(st.integers(root + 1, n))])
    compiled, reference = run_both(batch, lengths, root)
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_equals_reference_random(dtype: type) -> None:
    rng = np.random.default_rng(1)
    n = 40
    scores: np.ndarray = rng.normal(size=(6, n, n)).astype(dtype)
    scores[1] = rng.integers(-2, 3, size=(n, n))  # many ties
    scores[2][rng.random((n, n)) < 0.7] = NEG
    scores[3] = -rng.exponential(size=(n, n))
    compiled, reference = run_both(scores, np.array([n, n, n, n, 17, 2]), 1)
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (compiled[3][:4] > n - 1).any()  # contractions were exercised


# ----------------------------------------------------------------------------- ties and -inf


def test_ties_all_equal(backend: str) -> None:
    # best in-edges tie: lowest source wins, so root 0 gives the star from 0
    adj = max_arborescence(np.zeros((5, 5)))
    np.testing.assert_array_equal(adj[0, 1:], 1)
    assert adj.sum() == 4
    # root 2: 0 <- 1 and 1 <- 0 form a cycle, entered by the lowest edge (2, 0)
    adj, trace = max_arborescence(np.zeros((4, 4)), root=2, return_trace=True)
    expected = np.zeros((4, 4))
    expected[2, 0] = expected[0, 1] = expected[0, 3] = 1
    np.testing.assert_array_equal(adj, expected)
    assert trace.n_steps == 4 and tuple(trace.edges[3]) == (2, 0)


def test_all_neg_inf(backend: str) -> None:
    for n in (2, 3, 6):
        scores = np.full((2, n, n), NEG)
        scores[1, :, 2 % n] = 0.0
        adj, trace = max_arborescence(scores, root=1, return_trace=True)
        for b in range(2):
            check_arborescence(adj[b], 1, n)
            check_trace(scores[b], adj[b], ArborescenceTrace(*(t[b] for t in trace)), 1, n)
            assert not np.isnan(adj[b]).any()
            assert pair_value(adj[b], scores[b])[0] == -(n - 1) + b


def test_neg_inf_columns_and_forced_chain(backend: str) -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(5, 5))
    scores[:, 3] = NEG  # vertex 3 must take one forbidden edge
    adj = max_arborescence(scores)
    check_arborescence(adj, 0, 5)
    assert pair_value(adj, scores) == pytest.approx(brute_best(scores, 0))
    chain = np.full((6, 6), NEG)
    chain[np.arange(5), np.arange(1, 6)] = -100.0  # the only allowed arborescence
    np.testing.assert_array_equal(max_arborescence(chain), (chain == -100.0).astype(float))


def test_huge_scores_rescaled(backend: str) -> None:
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(3, 7, 7))
    scores[0, 1, 2] = NEG
    big = max_arborescence(scores * 2.0**900)
    np.testing.assert_array_equal(big, max_arborescence(scores))


# ----------------------------------------------------------------------------- shapes, kinds


def test_n2_and_lengths(backend: str) -> None:
    adj, trace = max_arborescence(np.array([[0.0, -5.0], [3.0, 0.0]]), return_trace=True)
    np.testing.assert_array_equal(adj, [[0, 1], [0, 0]])
    assert trace.edges.shape == (1, 2) and trace.n_steps == 1
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(4, 6, 6))
    lengths = np.array([6, 3, 1, 2])
    adj, trace = max_arborescence(scores, lengths=lengths, return_trace=True)
    for b, length in enumerate(lengths):
        check_arborescence(adj[b], 0, length)
        check_trace(scores[b], adj[b], ArborescenceTrace(*(t[b] for t in trace)), 0, length)
        if length > 1:  # same as the graph cut to its length
            alone, alone_trace = max_arborescence(scores[b, :length, :length], return_trace=True)
            np.testing.assert_array_equal(adj[b, :length, :length], alone)
            steps = alone_trace.n_steps
            np.testing.assert_array_equal(trace.edges[b, :steps], alone_trace.edges[:steps])
    assert trace.n_steps[2] == 0 and (trace.edges[2] == -1).all()


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3)])
def test_batch_shapes(backend: str, batch_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(6)
    scores = rng.normal(size=(*batch_shape, 5, 5))
    adj, trace = max_arborescence(scores, root=2, return_trace=True)
    assert adj.shape == scores.shape
    assert trace.edges.shape == (*batch_shape, 7, 2)
    assert trace.members.shape == (*batch_shape, 7, 5) and trace.members.dtype == np.bool_
    assert trace.n_steps.shape == batch_shape and trace.n_steps.dtype == np.int64
    flat = scores.reshape(-1, 5, 5)
    for b, a in enumerate(adj.reshape(-1, 5, 5)):
        np.testing.assert_array_equal(a, networkx_best(flat[b], 2))
    assert max_arborescence(np.zeros((0, 4, 4))).shape == (0, 4, 4)


def test_lengths_broadcast(backend: str) -> None:
    scores = np.random.default_rng(7).normal(size=(2, 3, 5, 5))
    adj = max_arborescence(scores, lengths=np.array([5, 4, 2]))
    np.testing.assert_array_equal(adj[1], max_arborescence(scores[1], lengths=[5, 4, 2]))
    assert adj[:, 2].sum() == 2 and adj[:, 1].sum() == 6


def test_dtypes_and_layouts(backend: str) -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(size=(3, 6, 6))
    for dtype in (np.float32, np.float64):
        out = max_arborescence(base.astype(dtype))
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, max_arborescence(base))
    ints = rng.integers(-3, 3, size=(6, 6))
    assert max_arborescence(ints).dtype == np.float64
    view = np.swapaxes(base, -1, -2)  # non-contiguous
    np.testing.assert_array_equal(max_arborescence(view), max_arborescence(view.copy()))
    wide = rng.normal(size=(3, 12, 12))[:, ::2, ::2]
    np.testing.assert_array_equal(max_arborescence(wide), max_arborescence(wide.copy()))


def test_torch_in_out(backend: str) -> None:
    scores = torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float32, torch.float64):
        adj, trace = max_arborescence(scores.to(dtype), root=1, return_trace=True)
        assert isinstance(adj, torch.Tensor) and adj.dtype == dtype
        assert adj.device == scores.device
        assert trace.edges.dtype == torch.int64 and trace.n_steps.dtype == torch.int64
        assert trace.members.dtype == torch.bool
        np.testing.assert_array_equal(adj.numpy(), max_arborescence(scores.numpy(), root=1))
    lengths = torch.tensor([5, 3])
    adj = max_arborescence(scores, lengths=lengths)
    assert adj[1, 3:].sum() == 0 and adj[1].sum() == 2


# ----------------------------------------------------------------------------- errors, fuzz


@pytest.mark.parametrize(
    ("scores", "kwargs", "match"),
    [
        (np.full((3, 3), np.nan), {}, "NaN"),
        (np.full((3, 3), np.inf), {}, r"\+inf"),
        (np.zeros((3, 3)), {"root": 3}, "root"),
        (np.zeros((3, 3)), {"root": -1}, "root"),
        (np.zeros((3, 3)), {"root": 1.0}, "root"),
        (np.zeros((3, 3)), {"root": True}, "root"),
        (np.zeros((3, 4)), {}, "square"),
        (np.zeros((1, 1)), {}, "size"),
        (np.zeros(3), {}, "shape"),
        (np.zeros((2, 3, 3)), {"lengths": [0, 3]}, "lengths"),
        (np.zeros((2, 3, 3)), {"lengths": [4, 3]}, "lengths"),
        (np.zeros((2, 3, 3)), {"lengths": [3, 3, 3]}, "lengths"),
        (np.zeros((2, 3, 3)), {"lengths": [2.5, 3]}, "lengths"),
        (np.zeros((2, 3, 3)), {"lengths": [3, 2], "root": 2}, "root"),
        (np.array([["a", "b"], ["c", "d"]]), {}, "numeric"),
    ],
)
def test_bad_input(backend: str, scores: np.ndarray, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        max_arborescence(scores, **kwargs)


@given(
    scores=hnp.arrays(
        st.sampled_from([np.float16, np.float32, np.float64, np.int32]),
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    root=st.integers(-1, 5),
    trace=st.booleans(),
)
def test_fuzz(scores: np.ndarray, root: int, trace: bool) -> None:
    try:
        result = max_arborescence(scores, root=root, return_trace=trace)
    except ValueError:
        return
    adj = result[0] if trace else result
    assert adj.shape == scores.shape
    n = scores.shape[-1]
    for a in adj.reshape(-1, n, n):
        check_arborescence(a, root, n)


# ----------------------------------------------------------------------------- the trace law


@pytest.mark.parametrize(("n", "length", "root"), [(4, 4, 0), (5, 4, 2)])
def test_trace_law_monte_carlo(backend: str, n: int, length: int, root: int) -> None:
    # Minimum arborescence of E = Exp(1) / exp(θ), i.e. the solver on -E: its trace has
    # p(T) = Π_steps softmax(θ over the step's candidates)[edge] (recursive Gumbel-max).
    rng = np.random.default_rng(2021)
    theta = rng.normal(size=(n, n))
    samples = 20000
    expo = rng.exponential(size=(samples, n, n)) / np.exp(theta)
    _, trace = max_arborescence(-expo, root=root, lengths=length, return_trace=True)
    keys = Counter(
        (e[:k].tobytes(), m[:k].tobytes())
        for e, m, k in zip(trace.edges, trace.members, trace.n_steps, strict=True)
    )
    tv, total = 0.0, 0.0
    for (e_bytes, m_bytes), count in keys.items():
        edges = np.frombuffer(e_bytes, dtype=np.int64).reshape(-1, 2)
        members = np.frombuffer(m_bytes, dtype=np.bool_).reshape(-1, n)[:, :length]
        p = np.exp(trace_log_prob(theta[:length, :length], edges, members))
        tv += abs(count / samples - p) / 2
        total += p
    tv += (1 - total) / 2  # mass of the traces never observed
    assert 0.98 < total <= 1 + 1e-9
    assert tv < 0.03
    assert len(keys) > length ** (length - 2)  # more traces than arborescences


def test_rescaling_is_per_graph_and_reads_only_edges(backend: str) -> None:
    # The rescale took the batch's largest |score|, ignored entries included, to
    # [0.5, 1): a finfo.min diagonal, a 1e300 graph beside it, or a 1e308 edge
    # made 1e-17 scores vanish and the tie-break decide.
    small = np.array([[0, 2e-17, 3e-17], [0, 0, 1e-17], [0, 5e-17, 0]])  # optimum 0->2->1
    want = np.array([[0, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=float)
    masked = small.copy()
    np.fill_diagonal(masked, np.finfo(np.float64).min)
    np.testing.assert_array_equal(max_arborescence(masked), want)
    beside = np.zeros((3, 3))
    beside[0, 1] = 1e300
    np.testing.assert_array_equal(max_arborescence(np.stack([small * 1e-13, beside]))[0], want)
    wide = np.zeros((3, 3))
    wide[0, 1], wide[2, 1], wide[0, 2], wide[1, 2] = 1e308, -1e308, -2e-16, -1e-16
    np.testing.assert_array_equal(max_arborescence(wide), [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
