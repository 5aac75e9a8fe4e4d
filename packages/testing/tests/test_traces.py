import math
from typing import Any

import numpy as np
import pytest
import torch

from structgrad import solvers
from structgrad.testing import traces

RANK = {"categorical": 1, "k_subset": 1, "binary_tree": 1}
CASES = [  # structure, n, options, number of traces (arborescences: counted by hand, see below)
    ("categorical", 5, {}, 5),
    ("k_subset", 5, {"k": 2}, 20),
    ("k_subset", 4, {"k": 4}, 24),
    ("k_subset", 4, {"k": 0}, 1),
    ("spanning_tree", 4, {}, 4**2 * 6),
    ("spanning_tree", 5, {}, 5**3 * 24),
    ("matching", 3, {}, 36),
    ("matching", 4, {}, 576),
    ("binary_tree", 1, {}, 1),
    ("binary_tree", 5, {}, 42),
    # n = 3: 3 acyclic choices + the 2-cycle {1, 2} entered from the root by 2 edges.
    ("arborescence", 3, {}, 5),
    # n = 4: 16 acyclic leaf choices; two 3-cycles x 3 root edges = 6; per 2-cycle {a, b}
    # (3 of them): the third vertex c from the root, then 4 entries = 4; c from a or b,
    # then 2 entries from the root + 2 from c, each closing a 3-cycle with 3 entries = 16.
    ("arborescence", 4, {}, 16 + 6 + 3 * (4 + 16)),
    ("arborescence", 4, {"root": 2}, 82),
    ("arborescence", 5, {}, 3749),
]


def _logits(structure: str, n: int, seed: int) -> torch.Tensor:
    shape = (n,) * (RANK.get(structure, 2))
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _solver_stack(structure: str, n: int, options: dict[str, int]) -> np.ndarray:
    if structure == "categorical":
        return np.eye(n)
    if structure == "k_subset":
        return solvers.enumerate_k_subsets(n, options["k"])
    if structure == "arborescence":
        return solvers.enumerate_arborescences(n, options.get("root", 0))
    return {
        "spanning_tree": solvers.enumerate_spanning_trees,
        "matching": solvers.enumerate_permutations,
        "binary_tree": solvers.enumerate_binary_trees,
    }[structure](n)


def _rows(stack: np.ndarray) -> set[bytes]:
    return {np.ascontiguousarray(x, dtype=np.float64).tobytes() for x in stack}


@pytest.mark.parametrize(("structure", "n", "options", "count"), CASES)
def test_counts_and_structures(structure: str, n: int, options: Any, count: int) -> None:
    found = traces.enumerate_traces(structure, n, **options)
    assert len(found) == len(set(found)) == count
    # Every structure is reached, and nothing else is.
    assert _rows([t.structure for t in found]) == _rows(_solver_stack(structure, n, options))


@pytest.mark.parametrize(("structure", "n", "options", "count"), CASES)
def test_trace_probabilities_sum_to_one(structure: str, n: int, options: Any, count: int) -> None:
    found = traces.enumerate_traces(structure, n, **options)
    theta = _logits(structure, n, count)
    if n > 2:
        theta.view(-1)[1] = theta.view(-1)[0]  # a tie
        theta.view(-1)[-2] = -math.inf  # a forbidden entry (never a whole candidate set here)
    theta.requires_grad_(True)
    logp = traces.trace_log_probs(structure, theta, found)
    assert float(logp.detach().exp().sum()) == pytest.approx(1.0, abs=1e-12)
    (grad,) = torch.autograd.grad(logp.exp().mul(torch.arange(count)).sum(), theta)
    assert torch.isfinite(grad).all()


def test_all_neg_inf_steps_are_deterministic() -> None:
    # Two -inf entries and k = 3: the last step has only -inf candidates; the lowest wins.
    found = traces.enumerate_traces("k_subset", 3, k=3)
    theta = torch.tensor([0.3, -math.inf, -math.inf], dtype=torch.float64)
    p = traces.trace_log_probs("k_subset", theta, found).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    best = found[int(p.argmax())]
    assert [e for e, _ in best.steps] == [(0,), (1,), (2,)] and float(p.max()) == 1.0


def _sample(structure: str, theta: np.ndarray, size: int, rng: Any, options: Any) -> Any:
    """Solver samples: θ + Gumbel for order-based structures, min-arborescence of E."""
    if structure == "arborescence":
        e = rng.exponential(size=(size, *theta.shape)) * np.exp(-theta)
        return solvers.max_arborescence(-e, return_trace=True, **options)
    g = theta + rng.gumbel(size=(size, *theta.shape))
    if structure == "categorical":
        return np.eye(theta.shape[0])[g.argmax(-1)], g.argmax(-1)
    if structure == "k_subset":
        return solvers.top_k(g, options["k"], return_trace=True)
    return {
        "spanning_tree": solvers.max_spanning_tree,
        "matching": solvers.crossing_matching,
        "binary_tree": solvers.binary_tree,
    }[structure](g, return_trace=True)


MC_CASES = [
    ("categorical", 4, {}),
    ("k_subset", 5, {"k": 3}),
    ("spanning_tree", 4, {}),
    ("matching", 3, {}),
    ("binary_tree", 5, {}),
    ("arborescence", 4, {}),
    ("arborescence", 4, {"root": 3}),
]


@pytest.mark.parametrize(("structure", "n", "options"), MC_CASES)
def test_solver_traces_match_the_enumeration(structure: str, n: int, options: Any) -> None:
    size, rng = 10_000, np.random.default_rng(7)
    found = traces.enumerate_traces(structure, n, **options)
    theta = _logits(structure, n, 3)
    p = traces.trace_log_probs(structure, theta, found).exp().numpy()
    x, trace = _sample(structure, theta.numpy(), size, rng, options)
    where = {t: i for i, t in enumerate(found)}
    counts = np.zeros(len(found))
    for b in range(size):
        i = where[traces.canonical_trace(structure, trace, n, index=(b,), **options)]
        np.testing.assert_array_equal(found[i].structure, x[b])
        counts[i] += 1
    # Expected TV of an empirical law over K cells is below 0.5 sqrt(2K / (pi size)).
    assert 0.5 * np.abs(counts / size - p).sum() < 0.6 * math.sqrt(len(found) / size)
    stack, q = traces.exact_distribution(structure, theta, **options)
    freq = np.array([(x == s).all(axis=tuple(range(1, x.ndim))).mean() for s in stack])
    assert 0.5 * np.abs(freq - q.numpy()).sum() < 0.6 * math.sqrt(len(stack) / size)


@pytest.mark.parametrize("n", [3, 4])
def test_solver_reaches_every_arborescence_trace(n: int) -> None:
    # Uniform logits: the rarest n = 4 trace has p = 1/324 (2-cycle, 3-cycle, root entry).
    e = np.random.default_rng(n).exponential(size=(20_000, n, n))
    _, trace = solvers.max_arborescence(-e, return_trace=True)
    raw = np.concatenate([trace.edges.reshape(len(e), -1), trace.members.reshape(len(e), -1)], 1)
    _, first = np.unique(raw, axis=0, return_index=True)
    seen = {traces.canonical_trace("arborescence", trace, n, index=(b,)) for b in first}
    assert seen == set(traces.enumerate_traces("arborescence", n))
    assert len(seen) == len(first)  # one solver trace per enumerated trace


def test_spanning_tree_components_agree_with_a_replay() -> None:
    theta = np.random.default_rng(0).gumbel(size=(50, 5, 5))
    _, trace = solvers.max_spanning_tree(theta, return_trace=True)
    for b in range(50):
        label = list(range(5))
        for t, (u, v) in enumerate(trace.edges[b]):
            assert list(trace.components[b, t]) == label
            lo, hi = sorted((label[u], label[v]))
            label = [lo if c == hi else c for c in label]


@pytest.mark.parametrize(("structure", "n", "options"), [*MC_CASES[:-1], ("matching", 4, {})])
def test_exact_gradient_matches_finite_differences(structure: str, n: int, options: Any) -> None:
    theta = _logits(structure, n, 11)
    weights = _logits(structure, n, 12)

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin((x * weights).flatten(1).sum(1))

    value, grad = traces.exact_gradient(structure, theta, f, **options)
    h, fd = 1e-6, torch.zeros_like(theta)
    for i in range(theta.numel()):
        step = torch.zeros_like(theta).view(-1)
        step[i] = h
        step = step.view_as(theta)
        up = traces.exact_expectation(structure, theta + step, f, **options)
        down = traces.exact_expectation(structure, theta - step, f, **options)
        fd.view(-1)[i] = (up - down) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)
    assert value == traces.exact_expectation(structure, theta, f, **options)


def test_exact_expectation_of_a_categorical_is_softmax() -> None:
    theta = _logits("categorical", 6, 0)
    table = torch.arange(6.0, dtype=torch.float64)
    got = traces.exact_expectation("categorical", theta, table)
    torch.testing.assert_close(got, (theta.softmax(0) * table).sum())
    # A 1-subset is a categorical.
    assert traces.exact_expectation("k_subset", theta, lambda x: x @ table, k=1) == pytest.approx(
        float(got), abs=1e-14
    )


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown structure"):
        traces.enumerate_traces("grid_path", 3)
    with pytest.raises(ValueError, match="max_traces"):
        traces.enumerate_traces("matching", 8)
    with pytest.raises(ValueError, match="more than 10"):
        traces.enumerate_traces("arborescence", 4, max_traces=10)
    with pytest.raises(ValueError, match="bad instance"):
        traces.enumerate_traces("k_subset", 3, k=4)
    # A default k = 1 gave the categorical law for a forgotten k.
    with pytest.raises(ValueError, match="k_subset needs k"):
        traces.exact_gradient("k_subset", torch.zeros(3, dtype=torch.float64), lambda x: x[:, 0])


def test_options_are_read_only_where_they_mean_something() -> None:
    # One set of options serves every structure (k and root were range-checked
    # for structures that ignore them).
    assert traces.enumerate_traces("categorical", 2, k=3) == traces.enumerate_traces(
        "categorical", 2
    )
    assert len(traces.enumerate_traces("binary_tree", 2, root=5)) == 2
    with pytest.raises(ValueError, match="bad instance"):
        traces.enumerate_traces("arborescence", 3, root=3)


@pytest.mark.parametrize(("structure", "shape"), [("categorical", (4,)), ("spanning_tree", (5, 5))])
def test_traces_of_another_size_are_refused(structure: str, shape: tuple[int, ...]) -> None:
    # n = 2 (3) traces on n = 4 (5) logits gave a law summing to 1 over the wrong
    # entries; the other way numpy's "invalid entry in coordinates array".
    small = traces.enumerate_traces(structure, shape[0] - 2)
    big = traces.enumerate_traces(structure, shape[0] + 1)
    for found in (small, big):
        with pytest.raises(ValueError, match="traces enumerated for n="):
            traces.trace_log_probs(structure, torch.zeros(shape, dtype=torch.float64), found)
    bad = solvers.CrossingTrace(np.array([[0, 1], [0, 2], [2, 0]]))
    with pytest.raises(ValueError, match="not a candidate"):
        traces.canonical_trace("matching", bad, 3)
    with pytest.raises(ValueError, match="rank 2"):
        traces.trace_log_probs("matching", torch.zeros(3), [])


def test_exact_expectation_needs_one_value_per_structure() -> None:
    theta = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    weights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"one value per structure, shape \(3,\), got \(3, 1\)"):
        traces.exact_expectation("categorical", theta, lambda x: (x @ weights)[:, None])
    with pytest.raises(ValueError, match="got \\(1,\\)"):
        traces.exact_expectation("categorical", theta, torch.tensor([5.0]))
    value = traces.exact_expectation("categorical", theta, lambda x: x @ weights)
    torch.testing.assert_close(value, (theta.softmax(-1) * weights).sum())


def _arborescence_trace(steps: Any, n: int) -> solvers.ArborescenceTrace:
    """A solver-shaped trace holding ``steps`` (edge, candidates), padded to ``2n``."""
    edges = np.full((2 * n, 2), -1)
    members = np.zeros((2 * n, n), dtype=bool)
    for s, (e, c) in enumerate(steps):
        edges[s] = e
        members[s, [j for _, j in c]] = True
    return solvers.ArborescenceTrace(edges=edges, members=members, n_steps=np.array(len(steps)))


@pytest.mark.parametrize("root", [0, 2])
def test_canonical_arborescence_traces_are_exactly_the_enumerated_ones(root: int) -> None:
    # Only the step structure was checked: a truncated trace (a vertex without
    # a parent) or one missing a contraction passed and gave a non-arborescence.
    n, rng = 4, np.random.default_rng(0)
    every = traces.enumerate_traces("arborescence", n, root=root)
    for t in every:
        steps = list(t.steps)
        shuffled = [steps[i] for i in rng.permutation(len(steps))]
        assert (
            traces.canonical_trace("arborescence", _arborescence_trace(shuffled, n), n, root=root)
            == t
        )
        for drop in range(len(steps)):  # a step missing: a vertex or a cycle left open
            with pytest.raises(ValueError, match="arborescence"):
                rest = steps[:drop] + steps[drop + 1 :]
                traces.canonical_trace("arborescence", _arborescence_trace(rest, n), n, root=root)
    # a contraction CLE never makes (the vertices' edges close no cycle)
    acyclic = next(t for t in every if len(t.steps) == n - 1)
    into = tuple((i, j) for i in range(n) for j in (1, 3) if i not in (1, 3) and j != root)
    if root not in (1, 3):
        extra = [*acyclic.steps, (into[0], into)]
        with pytest.raises(ValueError, match="never takes"):
            traces.canonical_trace("arborescence", _arborescence_trace(extra, n), n, root=root)


def test_canonical_binary_tree_traces_are_exactly_the_enumerated_ones() -> None:
    # Spans were not checked: all four nodes claiming [0, 4) gave a "tree" with a cycle.
    n = 4
    for t in traces.enumerate_traces("binary_tree", n):
        spans = np.array([[c[0][0], c[-1][0] + 1] for _, c in sorted(t.steps)])
        trace = solvers.BinaryTreeTrace(spans=spans, depth=np.zeros(n, dtype=np.int64))
        assert traces.canonical_trace("binary_tree", trace, n) == t
    for spans in ([[0, 4]] * 4, [[0, 1], [0, 4], [2, 4], [2, 3]], [[0, 1], [0, 4], [2, 4]]):
        trace = solvers.BinaryTreeTrace(spans=np.array(spans), depth=np.zeros(len(spans)))
        with pytest.raises(ValueError, match="binary_tree"):
            traces.canonical_trace("binary_tree", trace, n)
