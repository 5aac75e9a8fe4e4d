import itertools
import math

import pytest
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers


def grad_of(layer, theta, v, seed):
    t = theta.clone().requires_grad_(True)
    z = layer(t, generator=torch.Generator().manual_seed(seed))
    (z * v).sum().backward()
    return z, t.grad


CASES = list(
    itertools.product(
        [(1.0, 1.0, 1.0), (0.3, 2.0, 0.5), (0.0, 1.0, 1.0)],  # alpha, tau, tau_t
        [None, 1, 4],  # samples
        ["gumbel", "sog", None],
        [0.1, 3.0, 1e3],  # lambda
    )
)


@pytest.mark.parametrize(("temps", "samples", "noise", "lam"), CASES)
def test_forward_aimle_with_fixed_target_is_imle(temps, samples, noise, lam):
    alpha, tau, tau_t = temps
    g = torch.Generator().manual_seed(len(str((temps, samples, noise, lam))))
    theta = torch.randn(3, 8, generator=g, dtype=torch.float64)
    v = torch.randn(samples or 1, 3, 8, generator=g, dtype=torch.float64)
    v = v if samples else v[0]
    opts = {
        "k": 3,
        "samples": samples,
        "noise": noise,
        "tau": tau,
        "tau_target": tau_t,
    }
    za, ga = grad_of(E.aimle("k_subset", target=E.Target(lam, alpha=alpha), **opts), theta, v, 7)
    zi, gi = grad_of(E.imle("k_subset", target=E.Target(lam, alpha=alpha), **opts), theta, v, 7)
    assert torch.equal(za, zi)
    assert torch.equal(ga, gi)


@pytest.mark.parametrize("structure", ["k_subset", "spanning_tree", "matching"])
@pytest.mark.parametrize("samples", [None, 3])
def test_central_is_the_average_of_the_two_one_sided_differences(structure, samples):
    g = torch.Generator().manual_seed(3)
    theta = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    if structure == "k_subset":
        theta = theta[:, 0]
    v = torch.randn(samples or 1, *theta.shape, generator=g, dtype=torch.float64)
    v = v if samples else v[0]
    opts = {"samples": samples, "target": E.Target(0.8)} | (
        {"k": 2} if structure == "k_subset" else {}
    )
    _, central = grad_of(E.aimle(structure, difference="central", **opts), theta, v, 1)
    _, fwd = grad_of(E.imle(structure, **opts), theta, v, 1)
    _, bwd = grad_of(E.imle(structure, **opts), theta, -v, 1)  # one-sided towards θ + λ dy
    assert torch.allclose(central, (fwd - bwd) / 2)


def test_adaptive_lambda_formula_per_instance():
    theta = torch.randn(2, 6, dtype=torch.float64)
    v = torch.randn(2, 6, dtype=torch.float64)
    target = E.AdaptiveTarget(beta=0.7).eval()  # frozen β
    _, got = grad_of(E.aimle("k_subset", k=3, noise=None, target=target), theta, v, 0)
    lam = 0.7 * theta.norm(dim=-1, keepdim=True) / v.norm(dim=-1, keepdim=True)
    z = solvers.top_k(theta, 3)
    assert torch.allclose(got, (z - solvers.top_k(theta - lam * v, 3)) / lam)
    # λ ∝ 1/‖dy‖ and the 1/λ scaling make the estimate linear in the scale of dy
    _, got3 = grad_of(E.aimle("k_subset", k=3, noise=None, target=target), theta, 3 * v, 0)
    assert torch.allclose(got3, 3 * got)
    # an instance with dy = 0 gets a zero gradient, not NaN
    v[1] = 0
    _, got0 = grad_of(E.aimle("k_subset", k=3, noise=None, target=target), theta, v, 0)
    assert torch.equal(got0[1], torch.zeros(6)) and torch.isfinite(got0).all()


@pytest.mark.parametrize(
    ("structure", "unread"),
    [
        ("spanning_tree", lambda t: t.triu_(1)),  # 50 on the lower triangle and diagonal
        ("arborescence", lambda t: (t[..., 0].fill_(0), t.diagonal(0, -2, -1).fill_(0))),
        ("padded", lambda t: (t[..., 3:, :].fill_(0), t[..., :, 3:].fill_(0))),
    ],
)
@pytest.mark.parametrize("adaptive", [True, False])
def test_lambda_ignores_entries_the_map_never_reads(structure, unread, adaptive):
    # λ = β‖θ‖/‖dy‖ took its norms over padding, self-loops, edges into the
    # root and a tree's lower triangle: values there (50) shrank the gradient
    # on the rest 11x to 65x though the problem was unchanged. A fixed λ skips
    # the mask: the same gradient either way.
    g = torch.Generator().manual_seed(5)
    theta = torch.randn(4, 5, 5, generator=g, dtype=torch.float64)
    v = torch.randn(4, 5, 5, generator=g, dtype=torch.float64)
    lengths = torch.full((4,), 3) if structure == "padded" else None
    name = "arborescence" if structure == "padded" else structure
    loud_theta, loud_v = theta.clone(), v.clone()
    # (a tree's draw is symmetric: dy's lower triangle is read, folded into the upper)
    for t in (loud_theta,) if structure == "spanning_tree" else (loud_theta, loud_v):
        mask = torch.ones_like(t)
        unread(mask)
        t.copy_(torch.where(mask.bool(), t, 50.0))
    grads = []
    for th, dy in ((theta, v), (loud_theta, loud_v)):
        target = E.AdaptiveTarget(beta=3.0).eval() if adaptive else E.Target(5.0)
        layer = E.aimle(name, target=target)
        t = th.clone().requires_grad_(True)
        z = layer(t, lengths=lengths, generator=torch.Generator().manual_seed(1))
        (z * dy).sum().backward()
        grads.append(t.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_beta_update_rule():
    t = E.AdaptiveTarget(beta=0.5, step=0.1, momentum=0.5, decay=0.5, target_nnz=3.0)
    g = torch.zeros(2, 4, 6)  # [S, batch, n]
    g[..., :2] = 1.0  # 2 non-zeros per sample < 3
    t.update(g, 1)
    assert float(t.nnz) == pytest.approx(0.5 * 1.0 + 0.5 * 2.0)
    assert float(t.delta) == pytest.approx(0.1) and float(t.beta) == pytest.approx(0.6)
    t.update(g, 1)  # Δ = 0.1 + 0.5 * 0.1
    assert float(t.beta) == pytest.approx(0.75)
    g[..., :5] = 1.0  # 5 non-zeros: ν = 0.5 * 1.75 + 2.5 = 3.375 > 3
    t.update(g, 1)
    assert float(t.delta) == pytest.approx(-0.1 + 0.5 * 0.15)
    for _ in range(50):
        t.update(g, 1)
    assert float(t.beta) == 0.0  # clamped at 0
    t.eval()
    before = {k: v.clone() for k, v in t.state_dict().items()}
    t.update(torch.zeros(1, 1, 6), 1)
    assert all(torch.equal(before[k], v) for k, v in t.state_dict().items())


@pytest.mark.parametrize("samples", [None, 3])
def test_an_empty_batch_leaves_the_adaptive_state_unchanged(samples):
    """No estimate to count: ν must not decay towards 0 (nor β move) on an empty batch."""
    target = E.AdaptiveTarget(beta=0.5, step=0.1, target_nnz=3.0)
    layer = E.aimle("k_subset", k=2, target=target, samples=samples)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    theta = torch.randn(0, 6, requires_grad=True)
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    (z * torch.randn(6)).sum().backward()
    assert theta.grad.shape == (0, 6)
    for key, value in layer.state_dict().items():
        assert torch.equal(value, before[key]), key
    target.update(torch.zeros(2, 0, 6), 1)  # the rule itself
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())


def test_beta_reaches_the_target_density():
    # top-10 of 20, loss ‖z − b‖²: β starts at 0 and must settle where the
    # per-sample gradients have about 6 non-zero entries
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(32, 20, generator=g)
    b = torch.rand(32, 20, generator=g)
    target = E.AdaptiveTarget(beta=0.0, step=0.02, target_nnz=6.0)
    layer = E.aimle("k_subset", k=10, target=target)
    history = []
    for _ in range(300):
        t = theta.clone().requires_grad_(True)
        z = layer(t, generator=g)
        ((z - b) ** 2).sum().backward()
        history.append(float((t.grad != 0).sum(-1).float().mean()))
    assert float(target.beta) > 0.1
    late = torch.tensor(history[-100:]).mean()
    assert abs(float(late) - 6.0) < 1.0
    assert abs(float(target.nnz) - 6.0) < 1.5


def test_state_survives_a_state_dict_round_trip():
    layer = E.aimle("k_subset", k=3, target=E.AdaptiveTarget(beta=0.0, step=0.05))
    theta = torch.randn(4, 7, requires_grad=True)
    for i in range(5):
        layer(theta, generator=torch.Generator().manual_seed(i)).sum().backward()
    state = layer.state_dict()
    assert set(state) == {"target.beta", "target.nnz", "target.delta"}
    assert float(state["target.beta"]) > 0
    fresh = E.aimle("k_subset", k=3, target=E.AdaptiveTarget(beta=0.0, step=0.05))
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key])
    v = torch.randn(4, 7)
    _, g1 = grad_of(layer, theta.detach(), v, 99)
    _, g2 = grad_of(fresh, theta.detach(), v, 99)
    assert torch.equal(g1, g2)
    assert torch.equal(layer.target.beta, fresh.target.beta)


def test_difference_option_is_checked():
    with pytest.raises(ValueError, match="difference"):
        E.aimle("k_subset", k=2, difference="backward")
    assert isinstance(E.aimle("k_subset", k=2).target, E.AdaptiveTarget)
    with pytest.raises(ValueError, match="beta"):
        E.AdaptiveTarget(beta=-1.0)


def test_lambda_ignores_the_gradient_at_forbidden_entries():
    # λ = β‖θ‖/‖dy‖ read dy at -inf entries, which are never chosen: a large
    # dL/dz there (a loss weight on a forbidden item) made λ tiny and the
    # gradient on the allowed entries 0 (helper 65).
    theta = torch.tensor([[0.3, -math.inf, -0.5, 1.0]], dtype=torch.float64).expand(64, 4)
    grads = []
    for c in (0.0, 1e4):
        w = torch.tensor([1.0, c, -2.0, 0.5], dtype=torch.float64)
        t = theta.clone().requires_grad_(True)
        z = E.aimle("k_subset", k=2)(t, generator=torch.Generator().manual_seed(0))
        (z * w).sum().backward()
        grads.append(t.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
