"""Direction of the estimated gradients against exact gradients on tiny instances.

"True gradient" here is computed exactly by enumeration, never by sampling:

- ``pl``: top-k under Gumbel perturb-and-MAP is Gumbel-top-k, i.e. the
  Plackett-Luce law of the first k picks. Its objective
  ``E_{z ~ PL(θ)}[‖z − b‖²]`` (or ``‖E[z] − b‖²`` for perturbed optimizers, whose
  output is ``E[z]``) is enumerated over all ordered k-tuples and differentiated
  by autograd: it is exactly the objective the Gumbel estimators smooth.
- ``expfam``: the exponential family ``p(z) ∝ exp<z, θ>`` over the structure's
  configurations (``structgrad.solvers.enumerate_*``), objective
  ``E_p[‖z − b‖²]``: the comparison of the IMLE/AIMLE papers' gradient studies
  (perturb-and-MAP with Gumbel or Sum-of-Gamma noise only approximates it).

Estimates use many samples (S = 20000, the loss summed over samples) and a small
λ; bounds are cosine similarities, stated per case, on three fixed instances.
"""

import itertools
import math

import pytest
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers

S = 20_000
SEEDS = [0, 1, 2]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()))


def expfam_grad(theta, configs, b, upper=False):
    th = theta.clone().requires_grad_(True)
    w = torch.triu(th, 1) if upper else th
    p = torch.softmax((configs * w).flatten(1).sum(1), 0)
    loss = ((configs - b) ** 2).flatten(1).sum(1)
    (p * loss).sum().backward()
    return th.grad


def pl_objective(theta, k, b, on_marginals=False):
    """E[‖z − b‖²] (or ‖E z − b‖²) under Gumbel-top-k, by enumeration of ordered picks."""
    n = theta.shape[0]
    total, marg = 0.0, torch.zeros_like(theta)
    for order in itertools.permutations(range(n), k):
        logp = theta.new_zeros(())
        taken = torch.zeros(n, dtype=torch.bool)
        for i in order:
            logp = logp + theta[i] - torch.logsumexp(theta.masked_fill(taken, -math.inf), 0)
            taken = taken.clone()
            taken[i] = True
        z = taken.to(theta.dtype)
        total = total + logp.exp() * ((z - b) ** 2).sum()
        marg = marg + logp.exp() * z
    return ((marg - b) ** 2).sum() if on_marginals else total


def pl_grad(theta, k, b, on_marginals=False):
    th = theta.clone().requires_grad_(True)
    pl_objective(th, k, b, on_marginals).backward()
    return th.grad


def estimate(layer, theta, b, seed):
    t = theta.clone().requires_grad_(True)
    z = layer(t, generator=torch.Generator().manual_seed(seed))
    ((z - b) ** 2).sum().backward()
    return t.grad


def topk_instance(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, generator=g, dtype=torch.float64), torch.rand(
        6, generator=g, dtype=torch.float64
    )


TOPK_CASES = {
    # name: (layer factory, oracle, bound)
    "imle-gumbel": (lambda: E.imle("k_subset", k=3, samples=S, target=E.Target(0.1)), "pl", 0.9),
    "aimle-central": (
        lambda: E.aimle("k_subset", k=3, samples=S, difference="central", target=E.Target(0.1)),
        "pl",
        0.9,
    ),
    "aimle-adaptive": (
        lambda: E.aimle(
            "k_subset", k=3, samples=S, difference="central", target=E.AdaptiveTarget(0.05)
        ),
        "pl",
        0.85,
    ),
    "imle-sog": (
        lambda: E.imle("k_subset", k=3, samples=S, noise="sog", target=E.Target(0.1)),
        "expfam",
        0.5,
    ),
    # biased (identity backward): only the sign of the direction is asked for
    "st-perturbed": (
        lambda: E.straight_through("k_subset", k=3, noise="gumbel", samples=S),
        "pl",
        0.3,
    ),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(TOPK_CASES))
def test_topk6_direction(case, seed):
    make, oracle, bound = TOPK_CASES[case]
    theta, b = topk_instance(seed)
    if oracle == "pl":
        exact = pl_grad(theta, 3, b)
    else:
        exact = expfam_grad(theta, torch.as_tensor(solvers.enumerate_k_subsets(6, 3)), b)
    got = estimate(make(), theta, b, seed)
    assert cosine(got, exact) > bound


@pytest.mark.parametrize("seed", SEEDS)
def test_perturbed_optimizer_is_unbiased_for_gumbel_topk(seed):
    # E[MAP(θ + G)] is the Plackett-Luce marginal: the loss of the marginals is exact.
    theta, b = topk_instance(seed)
    exact = pl_grad(theta, 3, b, on_marginals=True)
    layer = E.perturbed("k_subset", k=3, samples=S, noise="gumbel", baseline=True)
    got = estimate(layer, theta, b, seed)
    assert cosine(got, exact) > 0.95
    assert torch.allclose(got.norm(), exact.norm(), rtol=0.1)


TREE_CASES = {
    "imle-gumbel": (lambda: E.imle("spanning_tree", samples=S, target=E.Target(0.1)), 0.7),
    "aimle-central": (
        lambda: E.aimle("spanning_tree", samples=S, difference="central", target=E.Target(0.1)),
        0.8,
    ),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(TREE_CASES))
def test_spanning_tree_k4_direction(case, seed):
    make, bound = TREE_CASES[case]
    g = torch.Generator().manual_seed(100 + seed)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    c = torch.rand(4, 4, generator=g, dtype=torch.float64)
    theta, target = a + a.T, c + c.T
    exact = expfam_grad(theta, torch.as_tensor(solvers.enumerate_spanning_trees(4)), target, True)
    got = estimate(make(), theta, target, seed)
    assert torch.equal(got, torch.triu(got, 1))  # the solver reads the upper triangle only
    assert cosine(got, exact) > bound
