import importlib.util

import pytest
import torch

import structgrad.relaxations._cvx as cvx_module
from structgrad.relaxations import cvx_relaxation, sinkhorn


def _closed_form_top_k(theta: torch.Tensor, k: int) -> torch.Tensor:
    """x = sigmoid(theta + nu) with nu chosen by bisection so that sum x = k."""
    lo = torch.full((*theta.shape[:-1], 1), -50.0, dtype=theta.dtype)
    hi = -lo
    for _ in range(200):
        mid = (lo + hi) / 2
        too_big = torch.sigmoid(theta + mid).sum(-1, keepdim=True) > k
        hi = torch.where(too_big, mid, hi)
        lo = torch.where(too_big, lo, mid)
    return torch.sigmoid(theta + (lo + hi) / 2)


def test_k_subset_matches_the_closed_form() -> None:
    layer = cvx_relaxation("k_subset", 8, k=3)
    theta = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    x = layer(theta, solver_args={"eps_abs": 1e-10, "eps_rel": 1e-10})
    want = _closed_form_top_k(theta.detach(), 3)
    torch.testing.assert_close(x.detach(), want, atol=1e-6, rtol=0)
    weights = torch.randn(4, 8, dtype=torch.float64)
    (x * weights).sum().backward()
    # Implicit gradient of x = sigmoid(theta + nu(theta)) with sum x = k:
    # dx/dtheta = D - d d^T / sum(d), d = x (1 - x).
    d = want * (1 - want)
    exact = d * weights - d * (d * weights).sum(-1, keepdim=True) / d.sum(-1, keepdim=True)
    torch.testing.assert_close(theta.grad, exact, atol=1e-5, rtol=0)


def test_several_batch_dims_and_an_empty_batch() -> None:
    # cvxpylayers takes one batch dim: the layer folds the others into it.
    layer = cvx_relaxation("k_subset", 5, k=2)
    theta = torch.randn(2, 3, 5, dtype=torch.float64)
    x = layer(theta, solver_args={"eps_abs": 1e-10, "eps_rel": 1e-10})
    assert x.shape == (2, 3, 5)
    torch.testing.assert_close(x, _closed_form_top_k(theta, 2), atol=1e-6, rtol=0)
    assert layer(torch.zeros(0, 5)).shape == (0, 5)


def test_matching_and_tree_polytopes() -> None:
    scores = torch.randn(2, 4, 4)
    m = cvx_relaxation("matching", 4)(scores)
    torch.testing.assert_close(m.sum(-1), torch.ones(2, 4), atol=1e-3, rtol=0)
    assert m.shape == (2, 4, 4) and m.dtype == scores.dtype
    assert (m - sinkhorn(scores)).abs().max() < 0.5  # same argmax region, different entropy
    t = cvx_relaxation("spanning_tree", 4)(scores, tau=0.5)
    assert torch.equal(t, t.transpose(-1, -2))
    torch.testing.assert_close(t.triu(1).sum((-1, -2)), torch.full((2,), 3.0), atol=1e-3, rtol=0)


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        cvx_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cvxpylayers" else real(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match=r"structgrad-relaxations\[cvx\]"):
        cvx_relaxation("k_subset", 5, k=2)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("nope", 4), {}, "no polytope"),
        (("k_subset", 4), {"k": 4}, "0 < k < n"),
        (("spanning_tree", 9), {}, "exponential"),
    ],
)
def test_bad_input(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cvx_relaxation(*args, **kwargs)


@pytest.mark.parametrize(
    ("scores", "tau", "match"),
    [
        (torch.zeros(2, 4), -1.0, "tau must be a positive finite number"),  # was: solved for -θ
        (torch.zeros(2, 4), 0.0, "tau must be a positive finite number"),  # was: SolverError
        (torch.full((2, 4), float("nan")), 1.0, "NaN"),  # was: "ScsWork allocation error"
        (torch.tensor([[0.0, -float("inf"), 1.0, 2.0]]), 1.0, "-inf is not supported"),
        (torch.zeros(2, 5), 1.0, "built for n = 4"),
    ],
)
def test_layer_checks_its_input(scores: torch.Tensor, tau: float, match: str) -> None:
    layer = cvx_relaxation("k_subset", 4, k=2)
    with pytest.raises(ValueError, match=match):
        layer(scores.double(), tau)
