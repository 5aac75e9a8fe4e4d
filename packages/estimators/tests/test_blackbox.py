import pytest
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers


def test_grid_path_gradient_is_vlastelicas_formula():
    g = torch.Generator().manual_seed(0)
    w = (torch.rand(2, 6, 6, generator=g, dtype=torch.float64) * 5).requires_grad_(True)
    dy = torch.randn(2, 6, 6, generator=g, dtype=torch.float64)
    lam = 7.0
    layer = E.blackbox("grid_path", lam=lam)
    y = layer(w)
    assert torch.equal(y, solvers.grid_shortest_path(w.detach()))
    (y * dy).sum().backward()
    w_prime = (w.detach() + lam * dy).clamp(min=0)  # w' = max(w + λ dy, 0)
    expected = -(y.detach() - solvers.grid_shortest_path(w_prime)) / lam
    assert torch.allclose(w.grad, expected)


def test_blackbox_is_noiseless_scaled_imle():
    theta = torch.randn(3, 7, dtype=torch.float64)
    v = torch.randn(3, 7, dtype=torch.float64)
    grads = []
    for layer in [
        E.blackbox("k_subset", k=3, lam=2.5),
        E.imle("k_subset", k=3, noise=None, target=E.Target(2.5, scale=True)),
    ]:
        t = theta.clone().requires_grad_(True)
        (layer(t) * v).sum().backward()
        grads.append(t.grad)
    assert torch.equal(*grads)
    assert grads[0].abs().sum() > 0


def test_user_minimisation_solver_and_perturbed_variant():
    def cheapest_two(c):
        return solvers.top_k(-c, 2)

    costs = torch.tensor([[0.0, 1.0, 5.0, 6.0]], requires_grad=True)
    layer = E.blackbox(cheapest_two, lam=10.0, minimize=True)
    (layer(costs) * torch.tensor([1.0, 0, 0, 0])).sum().backward()
    # w' = [10, 1, 5, 6] selects {1, 2}: -(y - y')/λ
    assert torch.allclose(costs.grad, torch.tensor([[-0.1, 0.0, 0.1, 0.0]]))
    noisy = E.blackbox("k_subset", k=2, noise="gumbel", tau=0.01, samples=3)
    assert noisy(torch.randn(2, 5)).shape == (3, 2, 5)


def test_bad_lambda():
    with pytest.raises(ValueError, match="lam"):
        E.blackbox("k_subset", k=2, lam=0.0)


@pytest.mark.parametrize("preset", [E.blackbox, E.straight_through])
def test_tau_without_noise_is_refused(preset) -> None:  # type: ignore[no-untyped-def]
    # tau scales the noise only: without noise it silently did nothing.
    with pytest.raises(ValueError, match="tau scales the noise and this layer has none"):
        preset("k_subset", k=2, tau=0.5)
    with pytest.raises(ValueError, match="temperature scales the noise and this layer has none"):
        preset("k_subset", k=2, temperature=0.5)  # not "is now called 'tau'"
    assert preset("k_subset", k=2, tau=0.5, noise="gumbel").tau == 0.5
