"""Shared helpers of test_score.py and test_relax.py: tiny instances, f, exact gradients.

Loaded by file path (the tests run with ``--import-mode=importlib``).
"""

from __future__ import annotations

import itertools
import math

import torch

import structgrad.estimators as E

# Tiny instances: (logits event shape, options).
CASES = {
    "categorical": ((5,), {}),
    "k_subset": ((5,), {"k": 2}),
    "spanning_tree": ((4, 4), {}),
    "arborescence": ((4, 4), {"root": 0}),
    "matching": ((3, 3), {}),
    "binary_tree": ((5,), {}),
}
STRUCTURES = [s for s in E.RECURSIVE_STRUCTURES if s in CASES]


def instance(structure: str, dtype=torch.float64) -> tuple[torch.Tensor, dict]:
    """Fixed non-trivial logits of the tiny instance and its options."""
    event, options = CASES[structure]
    g = torch.Generator().manual_seed(7)
    theta = 0.8 * torch.randn(event, generator=g, dtype=dtype)
    if structure == "spanning_tree":
        theta = torch.triu(theta, 1) + torch.triu(theta, 1).T
    return theta, options


_WEIGHTS: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}


def f(x: torch.Tensor) -> torch.Tensor:
    """A fixed non-linear function of a stack of structures ``[M, *shape]`` -> ``[M]``."""
    shape = tuple(x.shape[1:])
    if shape not in _WEIGHTS:
        g = torch.Generator().manual_seed(math.prod(shape) + len(shape))
        _WEIGHTS[shape] = (torch.randn(shape, generator=g), torch.randn(shape, generator=g))
    w1, w2 = (w.to(x) for w in _WEIGHTS[shape])
    a = (x * w1).flatten(1).sum(-1)
    b = (x * w2).flatten(1).sum(-1)
    return torch.sin(2.0 * a) + 0.5 * b**2


def _brute_force(structure: str, theta: torch.Tensor, options: dict) -> torch.Tensor:
    """E[f(X)] by enumerating Plackett-Luce orders (categorical, k_subset)."""
    n = theta.shape[-1]
    k = 1 if structure == "categorical" else options["k"]
    total = theta.new_zeros(())
    for order in itertools.permutations(range(n), k):
        logp = theta.new_zeros(())
        left = list(range(n))
        for c in order:
            logp = logp + theta[c] - torch.logsumexp(theta[left], 0)
            left.remove(c)
        x = torch.zeros(1, n, dtype=theta.dtype)
        x[0, list(order)] = 1.0
        total = total + logp.exp() * f(x)[0]
    return total


def exact_gradient(structure: str, theta: torch.Tensor, options: dict) -> torch.Tensor:
    """∇θ E[f(X)] by the structgrad.testing trace enumerator."""
    from structgrad.testing.traces import exact_expectation

    theta = theta.detach().clone().requires_grad_(True)
    value = exact_expectation(structure, theta, f, **options)
    (grad,) = torch.autograd.grad(value, theta)
    return grad


def estimates(layer, theta: torch.Tensor, rows: int, seed: int, loss_fn=f) -> torch.Tensor:
    """``rows`` independent single-row estimates ``[rows, *event]`` of ∇θ E[loss_fn(X)]."""
    th = theta.detach().expand(rows, *theta.shape).clone().requires_grad_(True)
    x = layer(th, generator=torch.Generator().manual_seed(seed))
    lead = (layer.samples, rows) if layer.samples else (rows,)
    loss = loss_fn(x.reshape(-1, *x.shape[len(lead) :])).reshape(lead)
    out = layer.attach(loss)
    if layer.samples:
        out = out.mean(0)  # one estimate per group of K (the reference's "+" scale)
    out.sum().backward()
    return th.grad


def assert_unbiased(est: torch.Tensor, exact: torch.Tensor, z: float = 4.0) -> float:
    """Every coordinate within ``z`` standard errors; returns the largest |error| / SE."""
    mean = est.mean(0)
    se = est.std(0) / math.sqrt(est.shape[0])
    err = (mean - exact).abs()
    assert torch.isfinite(est).all()
    assert (err <= z * se + 1e-9).all(), (mean, exact, se)
    return float((err / se.clamp_min(1e-12)).max())
