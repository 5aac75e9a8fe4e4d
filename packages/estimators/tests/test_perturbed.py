import functools

import pytest
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers


def test_categorical_gumbel_forward_is_softmax_and_jacobian_unbiased():
    # E[onehot(argmax(θ + σG))] = softmax(θ/σ): exact target for value and gradient
    sigma = 0.7
    theta = torch.tensor([[0.2, -0.5, 1.0, 0.4]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([[1.0, -2.0, 0.5, 0.3]], dtype=torch.float64)
    layer = E.perturbed("categorical", tau=sigma, noise="gumbel", samples=100_000, baseline=True)
    y = layer(theta, generator=torch.Generator().manual_seed(0))
    soft = torch.softmax(theta.detach() / sigma, -1)
    assert torch.allclose(y, soft, atol=5e-3)
    (y * v).sum().backward()
    t = theta.detach().requires_grad_(True)
    (torch.softmax(t / sigma, -1) * v).sum().backward()
    assert torch.allclose(theta.grad, t.grad, atol=0.03)


def test_backward_matches_the_formula():
    theta = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 6, dtype=torch.float64)
    for baseline in [False, True]:
        layer = E.perturbed("k_subset", k=2, tau=0.5, samples=4, baseline=baseline)
        y = layer(theta, generator=torch.Generator().manual_seed(1))
        (y * v).sum().backward()
        eps = E.Normal().sample(
            (4, 2, 6), dtype=torch.float64, device=theta.device,
            generator=torch.Generator().manual_seed(1),
        )  # fmt: skip
        z = solvers.top_k(theta.detach() + 0.5 * eps, 2)
        assert torch.allclose(y, z.mean(0))
        w = (z * v).sum(-1, keepdim=True)
        if baseline:
            w = w - (w.sum(0) - w) / 3
        assert torch.allclose(theta.grad, (w * eps).mean(0) / 0.5)  # E[<z, dy> Z] / σ
        theta.grad = None


def test_fenchel_young_value_and_gradient():
    theta = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    y = solvers.top_k(torch.randn(3, 5, dtype=torch.float64), 2)
    fy = E.FenchelYoungLoss("k_subset", k=2, tau=0.8, samples=6)
    loss = fy(theta, y, generator=torch.Generator().manual_seed(4))
    assert loss.shape == (3,)
    loss.sum().backward()
    po = E.PerturbedOptimizer("k_subset", k=2, tau=0.8, samples=6)
    mean = po(theta.detach(), generator=torch.Generator().manual_seed(4))
    assert torch.allclose(theta.grad, mean - y)
    eps = E.Normal().sample(
        (6, 3, 5), dtype=torch.float64, device=theta.device,
        generator=torch.Generator().manual_seed(4),
    )  # fmt: skip
    x = theta.detach() + 0.8 * eps
    f = (solvers.top_k(x, 2) * x).sum(-1).mean(0)
    assert torch.allclose(loss, f - (y * theta.detach()).sum(-1))


def test_fenchel_young_drives_scores_to_the_target():
    y = torch.tensor([[0.0, 1, 0, 1, 0, 1]])
    theta = torch.zeros(1, 6, requires_grad=True)
    fy = E.FenchelYoungLoss("k_subset", k=3, tau=0.5, samples=8)
    opt = torch.optim.SGD([theta], lr=0.5)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        opt.zero_grad()
        fy(theta, y, generator=g).sum().backward()
        opt.step()
    assert torch.equal(solvers.top_k(theta.detach(), 3), y)


def test_fenchel_young_minimisation_and_spanning_trees():
    costs = torch.rand(4, 4, dtype=torch.float64)
    costs = (costs + costs.T).requires_grad_(True)
    y = solvers.max_spanning_tree(-costs.detach())
    lo = E.FenchelYoungLoss("spanning_tree", minimize=True, samples=3)
    loss = lo(costs, y, generator=torch.Generator().manual_seed(2))
    loss.backward()
    assert torch.equal(costs.grad, torch.triu(costs.grad, 1))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="broadcast"):
        lo(costs, torch.zeros(3, 3))


def test_neg_inf_and_options():
    theta = torch.tensor([[1.0, -torch.inf, 0.5, 0.0]], requires_grad=True)
    y = E.perturbed("k_subset", k=2, noise="gumbel")(theta)
    assert y[0, 1] == 0
    y.sum().backward()
    assert torch.isfinite(theta.grad).all() and theta.grad[0, 1] == 0
    loss = E.FenchelYoungLoss("k_subset", k=2)(theta, torch.tensor([[1.0, 0, 1, 0]]))
    assert torch.isfinite(loss).all()
    with pytest.raises(ValueError, match="density"):
        E.perturbed("k_subset", k=2, noise="sog")
    with pytest.raises(ValueError, match="tau > 0"):
        E.PerturbedOptimizer("k_subset", k=2, tau=0.0)
    with pytest.raises(ValueError, match="samples >= 2"):
        E.PerturbedOptimizer("k_subset", k=2, samples=1, baseline=True)


def _unread(structure, lengths, n, root=0):
    """bool [B, n, n]: the entries the MAP never reads (outside lengths, self-loops, ...)."""
    inside = torch.arange(n) < torch.as_tensor(lengths)[:, None]
    unread = ~(inside[:, :, None] & inside[:, None, :])
    if structure == "spanning_tree":
        return unread | ~torch.ones(n, n, dtype=torch.bool).triu(1)
    unread = unread | torch.eye(n, dtype=torch.bool)
    unread[:, :, root] = True
    return unread


@pytest.mark.parametrize(
    ("structure", "options", "solve"),
    [
        ("spanning_tree", {}, solvers.max_spanning_tree),
        ("arborescence", {"root": 2}, functools.partial(solvers.max_arborescence, root=2)),
    ],
)
@pytest.mark.parametrize("baseline", [False, True])
def test_noise_score_is_exactly_zero_where_the_map_never_reads(structure, options, solve, baseline):
    """The formula on the entries the MAP reads; exact zeros on the others, as IMLE gives."""
    n, lengths = 5, torch.tensor([5, 3, 4])
    theta = torch.randn(3, n, n, dtype=torch.float64)
    theta = (theta + theta.mT).requires_grad_(True)
    v = torch.randn(3, n, n, dtype=torch.float64)
    layer = E.perturbed(structure, tau=0.5, samples=4, baseline=baseline, **options)
    y = layer(theta, lengths=lengths, generator=torch.Generator().manual_seed(1))
    (y * v).sum().backward()
    eps = E.Normal().sample(
        (4, 3, n, n), dtype=torch.float64, device=theta.device,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    z = solve((theta.detach() + 0.5 * eps).reshape(-1, n, n), lengths=lengths.repeat(4))
    z = z.reshape(4, 3, n, n)
    torch.testing.assert_close(y, z.mean(0))
    w = (z * v).sum((-1, -2), keepdim=True)
    if baseline:
        w = w - (w.sum(0) - w) / 3
    unread = _unread(structure, lengths, n, **options)
    want = torch.where(unread, 0.0, (w * eps).mean(0) / 0.5)
    torch.testing.assert_close(theta.grad, want)
    assert (theta.grad[unread] == 0).all() and (theta.grad[~unread] != 0).any()
    imle = E.imle(structure, **options)  # the finite difference: zeros there by itself
    t = theta.detach().requires_grad_(True)
    (imle(t, lengths=lengths) * v).sum().backward()
    assert (t.grad[unread] == 0).all()


def test_perturbed_arborescence_with_lengths_compiles():
    from structgrad.testing.compiled import assert_compiles

    layer = E.perturbed("arborescence", root=1, samples=3)
    lengths = torch.tensor([4, 3])
    assert_compiles(lambda x: layer(x, lengths=lengths), torch.randn(2, 4, 4))
