"""Every exact quantity of the Gibbs laws against brute-force enumeration (float64, n <= 5)."""

import math

import brute
import pytest
import torch
from torch.distributions import kl_divergence

from structgrad.distributions import Arborescence, KSubset, SpanningTree, structure

INF = math.inf


def _tree_law(name: str, theta: torch.Tensor, **options: object):  # type: ignore[no-untyped-def]
    if name == "spanning_tree":
        return SpanningTree(theta, **options)  # type: ignore[arg-type]
    return Arborescence(theta, **options)  # type: ignore[arg-type]


# scale 1 takes the float64 logdet path, scale 8 the log-space elimination.
CASES = [
    ("spanning_tree", {}, 1.0),
    ("spanning_tree", {}, 8.0),
    ("arborescence", {"root": 0}, 1.0),
    ("arborescence", {"root": 2}, 1.0),
    ("arborescence", {"root": 1}, 8.0),
]


@pytest.mark.parametrize(
    ("name", "options", "scale", "n"),
    [(*case, n) for case in CASES for n in (2, 3, 4, 5) if case[1].get("root", 0) < n],
)
def test_trees_match_enumeration(name: str, options: dict, scale: float, n: int) -> None:
    theta = torch.randn(3, n, n, dtype=torch.float64) * scale
    xs = brute.support(name, n, **options)
    d = _tree_law(name, theta, **options)
    torch.testing.assert_close(d.log_partition, brute.log_partition(theta, xs, name))
    torch.testing.assert_close(d.marginals, brute.marginals(theta, xs, name))
    torch.testing.assert_close(d.entropy(), brute.entropy(theta, xs, name))
    log_p = d.log_prob(xs[:, None])  # [N, 3]
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(log_p.T, torch.log(brute.law(theta, xs, name)))
    best = brute.scores(theta, xs, name).argmax(-1)
    torch.testing.assert_close(d.mode, xs[best])
    other = torch.randn(3, n, n, dtype=torch.float64) * scale
    torch.testing.assert_close(
        kl_divergence(d, _tree_law(name, other, **options)), brute.kl(theta, other, xs, name)
    )


@pytest.mark.parametrize("name", ["spanning_tree", "arborescence"])
def test_forbidden_edges_match_enumeration(name: str) -> None:
    n = 5
    theta = torch.randn(2, n, n, dtype=torch.float64)
    theta[0, 1, 2] = theta[0, 2, 1] = -INF
    theta[0, 0, 3] = theta[0, 3, 0] = -INF
    theta[1, 0, 4] = theta[1, 4, 0] = theta[1, 2, 4] = theta[1, 4, 2] = -INF
    xs = brute.support(name, n)
    d = _tree_law(name, theta)
    torch.testing.assert_close(d.log_partition, brute.log_partition(theta, xs, name))
    torch.testing.assert_close(d.marginals, brute.marginals(theta, xs, name))
    torch.testing.assert_close(d.entropy(), brute.entropy(theta, xs, name))
    log_p = d.log_prob(xs[:, None])
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(2, dtype=torch.float64))
    assert bool(torch.isneginf(log_p).any())  # trees through a forbidden edge
    # KL to a law that forbids edges p uses is infinite; the other way it is finite.
    free = torch.randn(2, n, n, dtype=torch.float64)
    assert bool(torch.isinf(kl_divergence(_tree_law(name, free), d)).all())
    torch.testing.assert_close(
        kl_divergence(d, _tree_law(name, free)), brute.kl(theta, free, xs, name)
    )


@pytest.mark.parametrize(
    ("name", "options"), [("spanning_tree", {}), ("arborescence", {"root": 1})]
)
def test_lengths_match_the_smaller_graphs(name: str, options: dict) -> None:
    n = 5
    lengths = torch.tensor([2, 3, 5, 4])
    theta = torch.randn(4, n, n, dtype=torch.float64)
    theta[0, 3, 4] = theta[0, 4, 3] = 1e3  # past a length: ignored
    d = _tree_law(name, theta, lengths=lengths, **options)
    for b, size in enumerate(lengths.tolist()):
        xs = brute.support(name, n, lengths=size, **options)
        torch.testing.assert_close(d.log_partition[b], brute.log_partition(theta[b], xs, name))
        torch.testing.assert_close(d.marginals[b], brute.marginals(theta[b], xs, name))
        torch.testing.assert_close(d.entropy()[b], brute.entropy(theta[b], xs, name))
        torch.testing.assert_close(d.mode[b], xs[brute.scores(theta[b], xs, name).argmax()])
        log_p = d.log_prob(xs[:, None])[:, b]
        torch.testing.assert_close(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_single_vertex_graph_has_one_empty_tree() -> None:
    theta = torch.randn(2, 4, 4, dtype=torch.float64)
    d = SpanningTree(theta, lengths=torch.tensor([1, 4]))
    assert float(d.log_partition[0]) == 0.0
    assert float(d.marginals[0].abs().sum()) == 0.0


@pytest.mark.parametrize(("n", "k"), [(1, 1), (3, 1), (4, 2), (5, 2), (5, 3), (5, 5), (5, 0)])
def test_k_subset_matches_enumeration(n: int, k: int) -> None:
    theta = torch.randn(3, n, dtype=torch.float64) * 2
    theta[0, 0] = -INF if k < n else theta[0, 0]
    xs = brute.support("k_subset", n, k=k)
    d = KSubset(theta, k)
    torch.testing.assert_close(d.log_partition, brute.log_partition(theta, xs, "k_subset"))
    torch.testing.assert_close(d.marginals, brute.marginals(theta, xs, "k_subset"))
    torch.testing.assert_close(d.entropy(), brute.entropy(theta, xs, "k_subset"))
    log_p = d.log_prob(xs[:, None])
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(d.mode, xs[brute.scores(theta, xs, "k_subset").argmax(-1)])
    other = torch.randn(3, n, dtype=torch.float64)
    torch.testing.assert_close(
        kl_divergence(d, KSubset(other, k)), brute.kl(theta, other, xs, "k_subset")
    )


def test_categorical_structure_is_the_softmax() -> None:
    theta = torch.randn(3, 5, dtype=torch.float64)
    s = structure("categorical")
    torch.testing.assert_close(s.log_partition(theta), torch.logsumexp(theta, -1))
    torch.testing.assert_close(s.marginals(theta), torch.softmax(theta, -1))


def test_spanning_tree_log_partition_matches_networkx() -> None:
    nx = pytest.importorskip("networkx")
    n = 7
    theta = torch.randn(n, n, dtype=torch.float64)
    graph = nx.Graph()
    for i in range(n):
        for j in range(i + 1, n):
            graph.add_edge(i, j, weight=math.exp(float(theta[i, j])))
    want = math.log(nx.number_of_spanning_trees(graph, weight="weight"))
    got = float(structure("spanning_tree").log_partition(theta))
    assert abs(got - want) < 1e-9
    # Marginal of an edge e: w_e Z(G / e) / Z(G); contracting 0-1 merges parallel
    # edges by summing weights (nx.Graph would keep one of them).
    merged = nx.Graph()
    for (i, j), w in zip(*_contract(n, theta), strict=True):
        merged.add_edge(i, j, weight=w)
    ratio = nx.number_of_spanning_trees(merged, weight="weight") / math.exp(want)
    mu = structure("spanning_tree").marginals(theta)
    assert abs(float(mu[0, 1]) - math.exp(float(theta[0, 1])) * ratio) < 1e-9


def _contract(n: int, theta: torch.Tensor) -> tuple[list[tuple[int, int]], list[float]]:
    """Edges and weights of K_n with vertices 0 and 1 merged into 0 (parallel weights summed)."""
    weights: dict[tuple[int, int], float] = {}
    for i in range(n):
        for j in range(i + 1, n):
            if (i, j) == (0, 1):
                continue
            a, b = (0 if i == 1 else i), (0 if j == 1 else j)
            key = (min(a, b), max(a, b))
            weights[key] = weights.get(key, 0.0) + math.exp(float(theta[i, j]))
    return list(weights), list(weights.values())


def test_arborescence_log_partition_matches_networkx() -> None:
    nx = pytest.importorskip("networkx")
    n, root = 6, 2
    theta = torch.randn(n, n, dtype=torch.float64)
    graph = nx.DiGraph()
    for i in range(n):
        for j in range(n):
            if i != j:
                graph.add_edge(i, j, weight=math.exp(float(theta[i, j])))
    want = math.log(nx.number_of_spanning_trees(graph, root=root, weight="weight"))
    assert abs(float(structure("arborescence").log_partition(theta, root=root)) - want) < 1e-9


def test_log_prob_is_minus_inf_off_the_support() -> None:
    # Summed over every 0/1 graph (not only the trees), the law has mass 1: every
    # non-tree, a graph using a vertex past its length included, gets -inf.
    import itertools

    from structgrad.distributions import Arborescence, KSubset, SpanningTree

    n = 4
    theta = torch.randn(2, n, n, dtype=torch.float64)
    lengths = torch.tensor([4, 3])
    rows, cols = torch.triu_indices(n, n, 1)
    tree = SpanningTree(theta, lengths=lengths)
    total = torch.zeros(2, dtype=torch.float64)
    for bits in itertools.product([0.0, 1.0], repeat=len(rows)):
        m = torch.zeros(n, n, dtype=torch.float64)
        m[rows, cols] = torch.tensor(bits, dtype=torch.float64)
        total += tree.log_prob((m + m.T).expand(2, n, n)).exp()
    torch.testing.assert_close(total, torch.ones(2, dtype=torch.float64))
    arb = Arborescence(theta, root=1, lengths=lengths)
    off = [(i, j) for i in range(n) for j in range(n) if i != j]
    total = torch.zeros(2, dtype=torch.float64)
    for bits in itertools.product([0.0, 1.0], repeat=len(off)):
        m = torch.zeros(n, n, dtype=torch.float64)
        for b, (i, j) in zip(bits, off, strict=True):
            m[i, j] = b
        total += arb.log_prob(m.expand(2, n, n)).exp()
    torch.testing.assert_close(total, torch.ones(2, dtype=torch.float64))
    k = KSubset(torch.randn(5, dtype=torch.float64), 2)
    assert k.log_prob(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)) == -torch.inf
    assert torch.isfinite(k.log_prob(torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)))


def test_support_check_matches_networkx_on_near_trees() -> None:
    # Trees with one edge moved (a cycle plus a cut-off part, same edge count):
    # log_prob is finite exactly where networkx says tree / arborescence, n = 12.
    import networkx as nx

    n, gen = 12, torch.Generator().manual_seed(3)
    theta = torch.randn(n, n, dtype=torch.float64, generator=gen)
    tree = SpanningTree(theta + theta.T)
    arb = Arborescence(theta, root=2)
    for kind, d in (("tree", tree), ("arborescence", arb)):
        xs = d.sample((40,), generator=gen)
        for x in xs:
            edges = x.nonzero().tolist()
            i, j = edges[int(torch.randint(len(edges), (1,), generator=gen))]
            a, b = (int(v) for v in torch.randint(n, (2,), generator=gen))
            y = x.clone()
            y[i, j] = 0.0
            if kind == "tree":
                y[j, i] = 0.0
            if a != b:
                y[a, b] = 1.0
                if kind == "tree":
                    y[b, a] = 1.0
            for z in (x, y):
                finite = bool(torch.isfinite(d.log_prob(z)))
                if kind == "tree":
                    graph = nx.from_numpy_array(z.numpy())
                    want = graph.number_of_edges() == n - 1 and nx.is_tree(graph)
                else:
                    graph = nx.from_numpy_array(z.numpy(), create_using=nx.DiGraph)
                    want = nx.is_arborescence(graph) and graph.in_degree(2) == 0
                assert finite == want, (kind, z)
