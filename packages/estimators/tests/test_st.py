import torch

import structgrad.estimators as E
import structgrad.solvers as solvers


def test_identity_backward_and_exact_forward():
    theta = (torch.randn(3, 6) * 1e8).requires_grad_(True)  # huge scores: value stays 0/1
    z = E.straight_through("k_subset", k=2)(theta)
    assert torch.equal(z, solvers.top_k(theta.detach(), 2))
    v = torch.randn(3, 6)
    (z * v).sum().backward()
    assert torch.equal(theta.grad, v)


def test_samples_add_up_and_mean_averages():
    theta = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    layer = E.straight_through("k_subset", k=2, noise="gumbel", tau=0.5, samples=4)
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    eps = E.Gumbel().sample(
        (4, 2, 5), dtype=torch.float64, device=theta.device,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(z, solvers.top_k(theta.detach() + 0.5 * eps, 2))
    v = torch.randn(4, 2, 5, dtype=torch.float64)
    (z * v).sum().backward()
    assert torch.allclose(theta.grad, v.sum(0))
    theta.grad = None
    mean = E.straight_through("k_subset", k=2, noise="gumbel", samples=4, reduce="mean")
    z = mean(theta, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 5)
    (z * v[0]).sum().backward()
    assert torch.allclose(theta.grad, v[0])


def test_minimisation_spanning_trees_and_neg_inf():
    c = torch.randn(4, requires_grad=True)
    (
        E.straight_through(lambda x: solvers.top_k(-x, 1), minimize=True)(c[None]) * 2
    ).sum().backward()
    assert torch.equal(c.grad, torch.full((4,), -2.0))
    a = torch.randn(5, 5)
    theta = (a + a.T).requires_grad_(True)
    v = torch.randn(5, 5)
    (E.straight_through("spanning_tree")(theta) * v).sum().backward()
    assert torch.allclose(theta.grad, torch.triu(v + v.T, 1))
    t = torch.tensor([[1.0, -torch.inf, 0.0]], requires_grad=True)
    z = E.straight_through("categorical", noise="gumbel")(t)
    z.sum().backward()
    assert torch.isfinite(z).all() and torch.equal(t.grad, torch.tensor([[1.0, 0.0, 1.0]]))


def test_identity_is_zero_where_the_map_never_reads():
    """Padding beyond lengths, self-loops and edges into the root get no gradient."""
    v = torch.randn(2, 4, 4)
    theta = torch.randn(2, 4, 4, requires_grad=True)
    (
        E.straight_through("arborescence", root=1)(theta, lengths=torch.tensor([4, 3])) * v
    ).sum().backward()
    want = v.clone()
    want[1, 3, :] = want[1, :, 3] = 0.0  # vertex 3 is outside the second graph
    want[:, :, 1] = 0.0  # nothing goes into the root
    want[:, torch.arange(4), torch.arange(4)] = 0.0  # no self-loops
    assert torch.equal(theta.grad, want)
    theta = torch.randn(4, 4, requires_grad=True)
    (E.straight_through("spanning_tree")(theta, lengths=2) * v[0]).sum().backward()
    want = torch.zeros(4, 4)
    want[0, 1] = v[0, 0, 1] + v[0, 1, 0]  # the one edge of a 2-vertex graph
    assert torch.equal(theta.grad, want)
