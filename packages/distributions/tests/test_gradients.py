"""gradcheck in float64 of log_partition, log_prob, entropy and rsample; no NaN at extremes."""

import math

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from structgrad.distributions import Arborescence, KSubset, PlackettLuce, SpanningTree

INF = math.inf


def _laws(scale: float = 1.0, forbid: bool = False):  # type: ignore[no-untyped-def]
    """(name, make(logits) -> law, logits, a structure of the support)."""
    n = 4
    tree = torch.randn(2, n, n, dtype=torch.float64) * scale
    sub = torch.randn(2, 6, dtype=torch.float64) * scale
    if forbid:
        tree[:, 0, 2] = tree[:, 2, 0] = tree[:, 1, 3] = -INF
        sub[:, 1] = -INF
    chain = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n - 1):  # path 0 -> 1 -> 2 -> 3 (edges 0-2, 1-3 unused)
        chain[i, i + 1] = 1.0
    return [
        ("spanning_tree", lambda t: SpanningTree(t), tree, chain + chain.T),
        ("arborescence", lambda t: Arborescence(t, root=0), tree, chain),
        (
            "arborescence_lengths",
            lambda t: Arborescence(t, lengths=torch.tensor([3, 3])),
            tree,
            chain * (torch.arange(n) < 3)[:, None] * (torch.arange(n) < 3)[None, :],
        ),
        ("k_subset", lambda t: KSubset(t, 3), sub, torch.tensor([1.0, 0, 1, 0, 1, 0]).double()),
    ]


@pytest.mark.parametrize(("scale", "forbid"), [(1.0, False), (6.0, False), (1.0, True)])
def test_gradcheck(scale: float, forbid: bool) -> None:
    """scale 1: the logdet path; scale 6 and -inf edges: the log-space elimination."""
    for _, make, logits, x in _laws(scale, forbid):
        theta = logits.clone().requires_grad_(True)
        assert gradcheck(lambda t, make=make: make(t).log_partition, (theta,))
        assert gradcheck(lambda t, make=make, x=x: make(t).log_prob(x), (theta,))
        assert gradcheck(lambda t, make=make: make(t).entropy(), (theta,))
        assert gradcheck(lambda t, make=make: make(t).marginals, (theta,))


def test_gradgradcheck_log_partition() -> None:
    for _, make, logits, _x in _laws():
        theta = logits.clone().requires_grad_(True)
        assert gradgradcheck(lambda t, make=make: make(t).log_partition, (theta,))


def test_rsample_is_differentiable() -> None:
    for _, make, logits, _x in _laws():
        theta = logits.clone().requires_grad_(True)

        def relaxed(t: torch.Tensor, make=make) -> torch.Tensor:  # type: ignore[no-untyped-def]
            return make(t).rsample((2,), generator=torch.Generator().manual_seed(0))

        assert gradcheck(relaxed, (theta,))


def test_plackett_luce_gradcheck_with_forbidden_items() -> None:
    theta = torch.tensor([[0.3, -INF, 1.2, -0.5], [1.0, 0.0, -1.0, 0.5]], dtype=torch.float64)
    theta.requires_grad_(True)
    ranking = torch.tensor([[2, 0, 3, 1], [1, 3, 0, 2]])
    assert gradcheck(lambda t: PlackettLuce(t).log_prob(ranking), (theta,))


@pytest.mark.parametrize("scale", [1e4, 1e2])
def test_no_nan_at_huge_logits_or_forbidden_edges(scale: float) -> None:
    for _, make, logits, x in _laws(scale, forbid=True):
        theta = logits.clone().requires_grad_(True)
        d = make(theta)
        values = [d.log_partition, d.marginals, d.entropy(), d.log_prob(x), d.rsample((2,))]
        for v in values:
            assert not bool(torch.isnan(v).any())
        total = d.log_partition.sum() + d.entropy().sum() + d.rsample((2,)).sum()
        (grad,) = torch.autograd.grad(total, theta)
        assert bool(torch.isfinite(grad).all())
        assert bool((d.entropy() > -1e-6 * scale).all())  # only rounding below 0
    pl = PlackettLuce(torch.tensor([1e4, -1e4, -INF, 3.0], requires_grad=True))
    assert bool(torch.isfinite(pl.log_prob(torch.tensor([0, 3, 1, 2]))).all())
