"""The torch.distributions API: shapes, expand, validation, KL registration, perturb-and-MAP."""

import importlib.metadata
import math

import pytest
import torch
from torch.distributions import kl_divergence

import structgrad.distributions as pkg
import structgrad.solvers as solvers
from structgrad.distributions import (
    Arborescence,
    Categorical,
    KSubset,
    PerturbAndMAP,
    PlackettLuce,
    SpanningTree,
    k_subset_marginals,
)


def test_version_and_categorical_reexport() -> None:
    assert pkg.__version__ == importlib.metadata.version("structgrad-distributions")
    assert Categorical is torch.distributions.Categorical


def test_shapes_and_expand() -> None:
    theta = torch.randn(3, 5, 5)
    d = SpanningTree(theta, lengths=torch.tensor([5, 4, 2]), tau=0.5)
    assert d.batch_shape == (3,) and d.event_shape == (5, 5)
    assert d.sample((2, 7)).shape == (2, 7, 3, 5, 5)
    r = d.rsample((2,))
    assert r.shape == (2, 3, 5, 5) and r.dtype == theta.dtype
    torch.testing.assert_close(r.triu(1).sum((-1, -2)), torch.tensor([4.0, 3.0, 1.0]).expand(2, 3))
    big = d.expand((4, 3))
    assert big.batch_shape == (4, 3) and big.sample().shape == (4, 3, 5, 5)
    torch.testing.assert_close(big.log_partition[1], d.log_partition)
    k = KSubset(torch.randn(2, 6), 2).expand((5, 2))
    assert k.sample().shape == (5, 2, 6) and k.k == 2
    a = Arborescence(torch.randn(4, 4), root=1)
    assert a.mode.sum() == 3 and float(a.mode[:, 1].sum()) == 0
    assert PlackettLuce(torch.randn(2, 4)).expand((3, 2)).sample().shape == (3, 2, 4)


def test_rsample_tends_to_perturb_and_map() -> None:
    theta = torch.randn(2, 5, 5, dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    soft = SpanningTree(theta, tau=1e-3).rsample((3,), generator=g1)
    hard = PerturbAndMAP("spanning_tree", theta).sample((3,), generator=g2)
    torch.testing.assert_close(soft, hard, atol=1e-6, rtol=0)


def test_validate_args_rejects_non_binary_values() -> None:
    d = SpanningTree(torch.randn(4, 4), validate_args=True)
    with pytest.raises(ValueError, match="support"):
        d.log_prob(torch.full((4, 4), 0.5))
    pl = PlackettLuce(torch.randn(4), validate_args=True)
    with pytest.raises(ValueError, match=r"must hold rankings \(permutations of range\(4\)\)"):
        pl.log_prob(torch.tensor([0, 0, 1, 2]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SpanningTree(torch.tensor([[0.0, math.nan], [0.0, 0.0]])), "logits contains NaN"),
        (lambda: SpanningTree(torch.randn(3, 4)), "logits must be square"),
        (lambda: Arborescence(torch.randn(3, 3), root=5), "root"),
        (lambda: KSubset(torch.randn(3), 4), "k must lie"),
        (lambda: KSubset(torch.randn(3), 1, tau=0.0), "tau"),
        (lambda: PlackettLuce(torch.randn(())), "logits must have shape"),
        (
            lambda: PerturbAndMAP("k_subset", torch.randn(3), kk=1),
            "unknown option\\(s\\) kk; it takes k, tau",
        ),
        (lambda: PerturbAndMAP("nope", torch.randn(3)), "unknown name"),
    ],
)
def test_bad_arguments_raise_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()


def test_kl_requires_the_same_support() -> None:
    with pytest.raises(ValueError, match="k differs"):
        kl_divergence(KSubset(torch.randn(5), 2), KSubset(torch.randn(5), 3))
    with pytest.raises(ValueError, match="lengths"):
        kl_divergence(SpanningTree(torch.randn(4, 4), lengths=3), SpanningTree(torch.randn(4, 4)))
    p = Arborescence(torch.randn(4, 4))
    assert float(kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-5)


def test_perturb_and_map() -> None:
    theta = torch.randn(2, 5, dtype=torch.float64)
    cat = PerturbAndMAP("categorical", theta)
    one_hot = torch.eye(5, dtype=torch.float64)[:, None]  # [5, 1, 5]
    torch.testing.assert_close(
        cat.log_prob(one_hot), Categorical(logits=theta).log_prob(torch.arange(5)[:, None])
    )
    tree = PerturbAndMAP("spanning_tree", torch.randn(5, 5))
    assert tree.sample((4,)).shape == (4, 5, 5) and tree.has_rsample
    with pytest.raises(NotImplementedError, match="no closed form"):
        tree.log_prob(tree.mode)
    match = PerturbAndMAP("matching", torch.randn(4, 4))
    assert match.sample((2,)).sum((-1, -2)).tolist() == [4.0, 4.0] and not match.has_rsample
    with pytest.raises(NotImplementedError, match="permanent"):
        match.rsample()
    bt = PerturbAndMAP("binary_tree", torch.randn(3, 6), lengths=torch.tensor([6, 4, 1]))
    assert bt.event_shape == (6, 6) and bt.sample((2,)).shape == (2, 3, 6, 6)
    with pytest.raises(NotImplementedError, match="costs"):
        PerturbAndMAP("grid_path", torch.rand(3, 3)).sample()
    assert PerturbAndMAP("grid_path", torch.rand(3, 3)).mode.shape == (3, 3)
    big = PerturbAndMAP("k_subset", torch.randn(14), k=12)
    with pytest.raises(NotImplementedError, match="k <= 10"):
        big.log_prob(big.mode)


@pytest.mark.parametrize(
    "make",
    [
        lambda: KSubset(torch.randn(2, 5), k=2),
        lambda: SpanningTree(torch.randn(2, 4, 4)),
        lambda: PerturbAndMAP("k_subset", torch.randn(2, 5), k=2),
        lambda: PlackettLuce(torch.randn(2, 5)),
    ],
)
def test_sample_shape_is_checked_by_name(make) -> None:  # type: ignore[no-untyped-def]
    d = make()
    assert d.sample((3,)).shape == (3, *d.batch_shape, *d.event_shape)
    assert d.sample(torch.Size()).shape == (*d.batch_shape, *d.event_shape)
    for bad in (3, "ab", (1.5,)):
        with pytest.raises(TypeError, match="sample_shape"):
            d.sample(bad)
    with pytest.raises(ValueError, match="sample_shape"):
        d.sample((-1,))


VARIANCE_CASES = [
    (lambda t: KSubset(t[0], 2), lambda: solvers.enumerate_k_subsets(4, 2)),
    (SpanningTree, lambda: solvers.enumerate_spanning_trees(4)),
    (lambda t: Arborescence(t, root=2), lambda: solvers.enumerate_arborescences(4, root=2)),
]


@pytest.mark.parametrize(("law", "support"), VARIANCE_CASES)
def test_variance_is_that_of_the_enumerated_law(law, support) -> None:  # type: ignore[no-untyped-def]
    theta = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    theta = theta + theta.T  # a tree reads one triangle: both agree
    d = law(theta)
    xs = torch.as_tensor(support(), dtype=torch.float64)  # [N, *event]
    log_w = (d.logits * xs).flatten(1).sum(-1)
    if isinstance(d, SpanningTree):
        log_w = log_w / 2  # each undirected edge stands twice in the adjacency
    p = torch.softmax(log_w, 0).reshape(-1, *([1] * len(d.event_shape)))
    mu = (p * xs).sum(0)
    torch.testing.assert_close(d.mean, mu)
    torch.testing.assert_close(d.variance, (p * (xs - mu) ** 2).sum(0))


def test_what_a_law_lacks_is_said() -> None:
    with pytest.raises(NotImplementedError, match="PerturbAndMAP has no tractable entropy"):
        PerturbAndMAP("spanning_tree", torch.randn(4, 4)).entropy()
    for law in (PlackettLuce(torch.randn(3)), PerturbAndMAP("spanning_tree", torch.randn(4, 4))):
        name = type(law).__name__
        with pytest.raises(NotImplementedError, match=f"{name} has no closed-form mean"):
            _ = law.mean
        with pytest.raises(NotImplementedError, match=f"{name} has no closed-form variance"):
            _ = law.variance
    with pytest.raises(NotImplementedError, match="PlackettLuce has no rsample"):
        PlackettLuce(torch.randn(3)).rsample()


def test_float32_log_prob_reuses_one_float64_log_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    theta = torch.randn(2, 6, requires_grad=True)
    law = KSubset(theta, 3)
    x = law.sample((4,))
    structure = type(law.structure)
    calls: list[torch.dtype] = []
    log_partition = structure.log_partition

    def counted(self, logits, **options):  # type: ignore[no-untyped-def]
        calls.append(logits.dtype)
        return log_partition(self, logits, **options)

    monkeypatch.setattr(structure, "log_partition", counted)
    with torch.no_grad():  # a first call without gradients ...
        first = law.log_prob(x)
    second = law.log_prob(x)
    assert calls == [torch.float64] and torch.equal(first, second.detach())
    # ... caches a log Z that later calls still differentiate: ∂ log p / ∂θ = x − μ
    (grad,) = torch.autograd.grad(second.sum(), theta)
    mu = KSubset(theta.detach().double(), 3).marginals
    torch.testing.assert_close(grad, (x - mu).sum(0).float())
    big = law.expand((5, 2))  # an expanded law computes its own
    torch.testing.assert_close(big.log_prob(x[:, None]), first[:, None].expand(4, 5, 2))
    assert calls == [torch.float64] * 2


def test_float32_k_subset_marginals_at_a_wide_spread() -> None:
    # The law's log-partition ran its DP in float32 whatever the spread (its
    # gradient put 0.6689 on items of a 3-way tie for 2 slots); the function
    # k_subset_marginals switches to float64, and now the law does too.
    g = torch.Generator().manual_seed(1)
    theta = ((torch.randn(100, generator=g, dtype=torch.float64) * 3).round() * (1000 / 3)).float()
    exact = KSubset(theta.double(), 92).marginals
    got = KSubset(theta, 92).marginals
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), exact, atol=1e-6, rtol=0)
    torch.testing.assert_close(got, k_subset_marginals(theta, 92), atol=1e-6, rtol=0)


def test_a_k_subset_row_without_room_has_no_mass_with_checks_off() -> None:
    from structgrad.distributions.checks import set_validation

    scores = torch.randn(2, 6, dtype=torch.float64)
    scores[0, :4] = -math.inf  # two finite scores for k = 3: no k-subset avoids -inf
    with pytest.raises(ValueError, match="fewer than k = 3 finite"):
        _ = KSubset(scores, 3).log_partition
    set_validation(False)
    try:
        log_z = KSubset(scores, 3).log_partition
        mu = KSubset(scores, 3).marginals
    finally:
        set_validation(True)
    assert log_z[0] == -math.inf and torch.isfinite(log_z[1])  # it was about -1000 nats
    assert torch.equal(mu[0], torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(log_z[1], KSubset(scores[1], 3).log_partition)
