"""What the upper layers read off a Structure: relax, polytope, coordinates, facts."""

import itertools
import math

import numpy as np
import pytest
import torch

from structgrad.distributions import STRUCTURES, sinkhorn, structure
from structgrad.testing.exact import expfamily_marginals

OPTIONS = {"k_subset": {"k": 2}}


@pytest.mark.parametrize("name", ["categorical", "k_subset", "spanning_tree", "arborescence"])
@pytest.mark.parametrize("tau", [0.3, 1.0, 4.0])
def test_relax_is_the_marginals_of_theta_over_tau(name: str, tau: float) -> None:
    s = structure(name)
    n = 5
    shape = (3, n) if s.event_dim == 1 else (3, n, n)
    theta = torch.randn(shape, dtype=torch.float64) * 2
    if s.symmetric:
        theta = theta + theta.transpose(-1, -2)
    support = s.enumerate(n, **OPTIONS.get(name, {})).numpy()
    want = expfamily_marginals(theta / tau, support, upper=s.symmetric)
    # The trees' range clip (max_range) is off: the exact marginals are wanted.
    clip = {"max_range": 1e3} if "max_range" in s.relax_option_names else {}
    got = s.relax(theta, tau=tau, **OPTIONS.get(name, {}), **clip)
    torch.testing.assert_close(got, want, atol=1e-8, rtol=0)


def test_relax_of_matching_is_sinkhorn_and_tau_can_be_a_tensor() -> None:
    s = structure("matching")
    theta = torch.randn(2, 4, 4, dtype=torch.float64)
    tau = torch.tensor([0.5, 2.0], dtype=torch.float64).view(2, 1, 1)
    got = s.relax(theta, tau=tau, n_iters=50)
    torch.testing.assert_close(got, sinkhorn(theta, tau=tau, n_iters=50, anneal=True))
    torch.testing.assert_close(got.sum(-1), torch.ones(2, 4, dtype=torch.float64))


@pytest.mark.parametrize("name", ["binary_tree", "grid_path"])
def test_no_relaxation_says_why(name: str) -> None:
    s = structure(name)
    assert not s.relaxable
    with pytest.raises(NotImplementedError, match=name):
        s.relax(torch.rand(4, 4))


def test_relax_rejects_unknown_options_and_bad_tau() -> None:
    with pytest.raises(
        ValueError, match=r"relax: unknown option\(s\) n_iters; it takes lengths, max_range, tau"
    ):
        structure("spanning_tree").relax(torch.zeros(3, 3), n_iters=3)
    with pytest.raises(ValueError, match="tau"):
        structure("categorical").relax(torch.zeros(3), tau=0.0)


@pytest.mark.parametrize(("name", "n"), [("k_subset", 5), ("matching", 4), ("spanning_tree", 5)])
def test_polytope_holds_exactly_the_structures_among_0_1_points(name: str, n: int) -> None:
    s = structure(name)
    opts = OPTIONS.get(name, {})
    a_eq, b_eq, a_ub, b_ub = s.polytope(n, **opts)
    d = a_eq.shape[1]
    support = s.flatten(s.enumerate(n, **opts)).numpy()
    inside = {tuple(v) for v in support.astype(int)}
    count = 0
    for bits in itertools.product([0.0, 1.0], repeat=d):
        x = np.array(bits)
        ok = np.allclose(a_eq @ x, b_eq) and bool(np.all(a_ub @ x <= b_ub + 1e-12))
        assert ok == (tuple(x.astype(int)) in inside), (name, bits)
        count += ok
    assert count == len(inside)


def test_polytope_limits() -> None:
    with pytest.raises(ValueError, match="0 < k < n"):
        structure("k_subset").polytope(4, k=4)
    with pytest.raises(ValueError, match="exponential"):
        structure("spanning_tree").polytope(9)
    with pytest.raises(NotImplementedError, match="arborescence"):
        structure("arborescence").polytope(4)


@pytest.mark.parametrize("name", STRUCTURES)
def test_flatten_round_trip(name: str) -> None:
    s = structure(name)
    n = 4
    x = s.enumerate(n, **OPTIONS.get(name, {})) if name != "grid_path" else torch.rand(2, 3, 3)
    event = x.shape[1:]
    back = s.unflatten(s.flatten(x), event)
    torch.testing.assert_close(back, x)


def test_facts() -> None:
    facts = {
        name: (structure(name).minimize, structure(name).nonlinear is None) for name in STRUCTURES
    }
    assert facts == {
        "categorical": (False, True),
        "k_subset": (False, True),
        "spanning_tree": (False, True),
        "arborescence": (False, True),
        "matching": (False, True),
        "binary_tree": (False, False),
        "grid_path": (True, True),
    }
    kinds = {name: structure(name).relaxation for name in STRUCTURES}
    assert kinds == {
        "categorical": "softmax",
        "k_subset": "marginals",
        "spanning_tree": "marginals",
        "arborescence": "marginals",
        "matching": "sinkhorn",
        "binary_tree": None,
        "grid_path": None,
    }
    assert all((kinds[name] is None) == (not structure(name).relaxable) for name in STRUCTURES)
    assert structure("k_subset").ones((10,), k=3) == 3.0
    assert structure("spanning_tree").ones((6, 6)) == 5.0
    assert structure("matching").ones((6, 6)) == 6.0
    assert structure("categorical").ones((6,)) == 1.0
    assert structure("grid_path").ones((10, 12)) == pytest.approx(1.3 * 12)
    assert math.isfinite(structure("binary_tree").ones((5,)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matching_relax_with_a_finite_mask_stays_soft(dtype) -> None:
    # A fallback to the assignment (for tau past float64's resolution) took a
    # -1e30 mask's spread for unresolvable and made tau = 0.1 hard, without
    # gradient (helper 77): it was withdrawn.
    theta = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta[0, 1] = -1e30
    theta = theta.to(dtype).requires_grad_(True)
    out = structure("matching").relax(theta, tau=0.1)
    assert float(((out > 1e-6) & (out < 1 - 1e-6)).sum()) > 0  # soft somewhere
    (out * torch.arange(16.0, dtype=dtype).view(4, 4)).sum().backward()
    assert float(theta.grad.norm()) > 0
