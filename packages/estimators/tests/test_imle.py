import math

import pytest
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers


def topk(x, k=2):
    return solvers.top_k(x, k)


def gumbel(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return E.Gumbel().sample(shape, dtype=dtype, device=torch.device("cpu"), generator=g)


@pytest.mark.parametrize(
    ("alpha", "tau", "tau_t", "lam", "scale", "samples", "marginal"),
    [
        (1.0, 1.0, 1.0, 0.7, True, 3, 1),
        (1.0, 1.0, 1.0, 0.7, False, None, 1),
        (0.5, 2.0, 0.5, 1.3, True, 2, 4),
        (0.0, 1.0, 1.0, 2.0, True, 4, 2),
        (1.0, 0.0, 1.0, 0.5, True, 2, 1),
    ],
)
def test_gradient_matches_the_formula_with_the_forward_noise(
    alpha, tau, tau_t, lam, scale, samples, marginal
):
    b, n, seed = (2, 3), 7, 11
    theta = torch.randn(*b, n, dtype=torch.float64, requires_grad=True)
    layer = E.imle(
        "k_subset",
        k=2,
        target=E.Target(lam, alpha=alpha, scale=scale),
        tau=tau,
        tau_target=tau_t,
        samples=samples,
        marginal_samples=marginal,
    )
    s = samples or 1
    v = torch.randn(s, *b, n, dtype=torch.float64)
    z = layer(theta, generator=torch.Generator().manual_seed(seed))
    assert z.shape == ((s, *b, n) if samples else (*b, n))
    (z * (v if samples else v[0])).sum().backward()

    eps = gumbel((s, marginal, *b, n), seed)
    th = theta.detach()
    assert torch.equal(z.reshape(s, *b, n), topk(th + tau * eps[:, 0]))
    left = topk(alpha * th + tau_t * eps)
    right = topk(alpha * th - lam * v[:, None] + tau_t * eps)
    g = (left - right).mean(1)
    expected = (g / lam if scale else g).sum(0)
    assert torch.allclose(theta.grad, expected)


@pytest.mark.parametrize("samples", [None, 1])
@pytest.mark.parametrize("reduce", ["none", "mean"])
@pytest.mark.parametrize(
    ("alpha", "tau", "tau_t", "lam"),
    [(1.0, 1.0, 1.0, 1.0), (1.0, 2.0, 2.0, 1.0), (0.5, 1.0, 0.5, 1.0), (1.0, 1.0, 1.0, 1e-3)],
)
def test_single_sample_gradient_matches_the_formula(samples, reduce, alpha, tau, tau_t, lam):
    # one sample, one marginal draw: the layout without [S, M] lead dims
    b, n, seed = (2, 3), 7, 5
    theta = torch.randn(*b, n, dtype=torch.float64, requires_grad=True)
    target = E.Target(lam, alpha=alpha)
    opts = {"tau": tau, "tau_target": tau_t, "reduce": reduce}
    layer = E.imle("k_subset", k=2, target=target, samples=samples, **opts)
    z = layer(theta, generator=torch.Generator().manual_seed(seed))
    assert z.shape == ((1, *b, n) if samples and reduce == "none" else (*b, n))
    v = torch.randn(*b, n, dtype=torch.float64)
    (z * v).sum().backward()
    eps = gumbel((*b, n), seed)
    th = theta.detach()
    assert torch.equal(z.reshape(*b, n), topk(th + tau * eps))
    g = topk(alpha * th + tau_t * eps) - topk(alpha * th - lam * v + tau_t * eps)
    assert torch.equal(theta.grad, g / lam if lam > 0 else g)


def test_reduce_mean_shares_the_gradient_and_averages():
    theta = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    layer = E.imle("k_subset", k=3, samples=5, reduce="mean", target=E.Target(0.5))
    v = torch.randn(4, 6, dtype=torch.float64)
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4, 6)
    (z * v).sum().backward()
    eps = gumbel((5, 1, 4, 6), 0)[:, 0]
    zs = solvers.top_k(theta.detach() + eps, 3)
    assert torch.allclose(z, zs.mean(0))
    expected = ((zs - solvers.top_k(theta.detach() - 0.5 * v + eps, 3)) / 0.5).mean(0)
    assert torch.allclose(theta.grad, expected)


def test_no_noise_is_one_solve_and_blackbox_like():
    theta = torch.tensor([0.3, 2.0, -1.0, 1.0], requires_grad=True)
    layer = E.imle("k_subset", k=2, noise=None, samples=3, target=E.Target(2.0))
    z = layer(theta)
    assert torch.equal(z, torch.tensor([[0.0, 1, 0, 1]]).expand(3, 4))
    v = torch.tensor([0.0, 1.0, 0.0, 0.0])
    (z * v).sum().backward()
    # target 1.0 - 2 * 1 < 0.3: item 0 replaces item 1 in each of the 3 samples
    assert torch.equal(theta.grad, 3 * torch.tensor([-0.5, 0.5, 0.0, 0.0]))
    with pytest.raises(ValueError, match="marginal_samples"):
        E.imle("k_subset", k=2, noise=None, marginal_samples=2)


def test_minimisation_is_maximisation_of_negated_costs():
    costs = torch.randn(3, 6, dtype=torch.float64)

    def bottom2(c):  # a user solver that minimises <z, c>
        return solvers.top_k(-c, 2)

    lo = E.imle(bottom2, minimize=True, samples=2, target=E.Target(0.8))
    hi = E.imle("k_subset", k=2, samples=2, target=E.Target(0.8))
    c1 = costs.clone().requires_grad_(True)
    c2 = costs.clone().requires_grad_(True)
    v = torch.randn(2, 3, 6, dtype=torch.float64)
    z1 = lo(c1, generator=torch.Generator().manual_seed(5))
    z2 = hi(-c2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(z1, z2)
    (z1 * v).sum().backward()
    (z2 * v).sum().backward()
    assert torch.allclose(c1.grad, c2.grad)
    assert E.imle("k_subset", k=2, minimize=True).solver.minimize


@pytest.mark.parametrize("structure", ["k_subset", "spanning_tree"])
def test_sample_hard_of_a_costs_layer_minimises_too(structure):
    # minimize=True on a maximising structure: the forward took MAP(-c) but
    # sample_hard returned MAP(c), the most expensive structure (helper 65).
    c = torch.randn(5, 5, dtype=torch.float64)
    c = c + c.mT if structure == "spanning_tree" else c
    options = {"k": 2} if structure == "k_subset" else {}
    layer = E.blackbox(structure, minimize=True, **options)
    plain = E.blackbox(structure, **options)
    assert torch.equal(layer(c), plain(-c))
    assert torch.equal(layer.sample_hard(c, noise=False), plain.sample_hard(-c, noise=False))
    g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
    assert torch.equal(layer.sample_hard(c, generator=g1), plain.sample_hard(-c, generator=g2))


def test_minimisation_moves_costs_the_right_way():
    # a cheap item whose selection the loss penalises must see its cost go up under
    # gradient descent (negative gradient), and the item replacing it go down
    costs = torch.tensor([[0.0, 1.0, 5.0, 6.0]], requires_grad=True)
    layer = E.imle(lambda c: solvers.top_k(-c, 2), minimize=True, noise=None)
    z = layer(costs)
    assert torch.equal(z, torch.tensor([[1.0, 1, 0, 0]]))
    (z * torch.tensor([10.0, 0, 0, 0])).sum().backward()
    assert torch.equal(costs.grad, torch.tensor([[-1.0, 0.0, 1.0, 0.0]]))


def test_spanning_tree_folds_dy_and_keeps_the_upper_triangle():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    theta = (a + a.mT).requires_grad_(True)
    v = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    layer = E.imle("spanning_tree", target=E.Target(0.6))
    z = layer(theta, generator=torch.Generator().manual_seed(9))
    (z * v).sum().backward()
    eps = gumbel((1, 1, 2, 5, 5), 9)[0, 0]
    th = theta.detach()
    fold = torch.triu(v + v.mT, 1)
    expected = torch.triu(
        solvers.max_spanning_tree(th + eps) - solvers.max_spanning_tree(th - 0.6 * fold + eps), 1
    )
    assert torch.allclose(theta.grad, expected / 0.6)


def test_lengths_pad_spanning_trees():
    theta = torch.randn(2, 5, 5, dtype=torch.float64)
    theta = (theta + theta.mT).requires_grad_(True)
    lengths = torch.tensor([3, 5])
    z = E.imle("spanning_tree", samples=2)(theta, lengths=lengths)
    assert z.shape == (2, 2, 5, 5)
    assert z[:, 0, 3:].abs().sum() == 0 and z[:, 0, :, 3:].abs().sum() == 0
    assert z[:, 0].sum((-1, -2)).eq(4).all() and z[:, 1].sum((-1, -2)).eq(8).all()
    z.sum().backward()
    assert theta.grad[0, 3:].abs().sum() == 0 and theta.grad[0, :, 3:].abs().sum() == 0
    with pytest.raises(ValueError, match="lengths"):
        E.imle("k_subset", k=2)(torch.randn(2, 4), lengths=torch.tensor([2, 3]))
    with pytest.raises(ValueError, match="do not match batch"):
        E.imle("spanning_tree")(theta, lengths=torch.tensor([3, 4, 5]))


def test_neg_inf_scores_stay_forbidden_and_finite():
    theta = torch.tensor([[0.5, -torch.inf, 1.0, 0.2, -torch.inf]], requires_grad=True)
    for layer in [
        E.imle("k_subset", k=2, samples=4, target=E.Target(1.0, alpha=0.5)),
        E.aimle("k_subset", k=2, samples=4, difference="central"),
    ]:
        z = layer(theta, generator=torch.Generator().manual_seed(0))
        assert z[..., 1].eq(0).all() and z[..., 4].eq(0).all()
        (z * torch.randn(5)).sum().backward()
        assert torch.isfinite(theta.grad).all()
        theta.grad = None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_follow_the_input(dtype):
    theta = torch.randn(3, 5, dtype=dtype, requires_grad=True)
    for noise in ["gumbel", "sog", None]:
        z = E.imle("k_subset", k=2, noise=noise, samples=2)(theta)
        assert z.dtype == dtype and z.device == theta.device
        z.sum().backward()
        assert theta.grad.dtype == dtype


def test_unbatched_scores_and_zero_temperatures():
    theta = torch.tensor([1.0, 3.0, 2.0], requires_grad=True)
    z = E.imle("categorical", tau=0.0)(theta)
    assert torch.equal(z, torch.tensor([0.0, 1.0, 0.0]))
    (-5 * z[2]).backward()  # target θ + 5·e_2 moves the argmax to 2
    assert torch.equal(theta.grad, torch.tensor([0.0, 1.0, -1.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_k_subset_binding_is_the_public_top_k(dtype):
    bound = E.bind_solver("k_subset", k=3)
    x = torch.randn(6, 20, dtype=dtype)
    x[0, :5] = 0.25  # ties go to the lower index
    x[1, 2] = -torch.inf
    x[2, 6:] = -torch.inf  # six items left (three in x[:, ::2]): no -inf one is taken
    for scores in (x, x[:, ::2], x.T.contiguous().T, x[:0]):  # views, no rows
        got = bound.fn(scores)
        assert got.dtype == dtype and torch.equal(got, solvers.top_k(scores, 3))
    half = x.to(torch.float16)
    assert torch.equal(bound.fn(half), solvers.top_k(half, 3))
    assert torch.equal(E.bind_solver("k_subset", k=0).fn(x), solvers.top_k(x, 0))
    # top-k takes a -inf item only when a row has fewer than k others: refused
    with pytest.raises(ValueError, match="leave no k_subset"):
        E.bind_solver("k_subset", k=20).fn(x)
    with pytest.raises(ValueError, match="scores contains NaN"):
        bound.fn(torch.where(x > 1, torch.nan, x))
    with pytest.raises(ValueError, match=r"\+inf"):
        bound.fn(torch.where(x > 1, torch.inf, x))
    with pytest.raises(ValueError, match="k must lie in"):
        E.bind_solver("k_subset", k=21).fn(x)


def test_nan_gradient_reaching_the_solver_is_an_error():
    theta = torch.randn(3, 6, requires_grad=True)
    z = E.imle("k_subset", k=2)(theta)
    with pytest.raises(ValueError, match="contains NaN"):
        z.backward(torch.full_like(z, torch.nan))


def test_no_double_backward_through_the_solver():
    theta = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    z = E.imle("k_subset", k=2)(theta)
    (g,) = torch.autograd.grad((z * theta).sum(), theta, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_a_user_target_sees_sample_dims_with_a_single_sample():
    seen = []

    class Recording(E.Target):
        def lam(self, theta, dy, event_ndim):
            seen.append(("dy", tuple(dy.shape)))
            return torch.full((*dy.shape[:-1], 1), 0.5, dtype=dy.dtype)

        def update(self, g, event_ndim):
            seen.append(("g", tuple(g.shape)))

    theta = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    z = E.imle("k_subset", k=2, target=Recording())(
        theta, generator=torch.Generator().manual_seed(1)
    )
    v = torch.randn(3, 6, dtype=torch.float64)
    (z * v).sum().backward()
    assert seen == [("dy", (1, 1, 3, 6)), ("g", (1, 3, 6))]
    eps = gumbel((3, 6), 1)
    th = theta.detach()
    expected = (topk(th + eps) - topk(th - 0.5 * v + eps)) / 0.5
    assert torch.allclose(theta.grad, expected)


@pytest.mark.parametrize(
    ("make", "options"),
    [
        (E.imle, {}),
        (E.blackbox, {"lam": 2.0}),
        # (AIMLE's target frozen: the two backward passes below must see one β)
        (E.aimle, {"target": E.AdaptiveTarget().eval()}),
    ],
)
def test_nan_gradient_on_padding_stays_off_the_solver(make, options):
    # The step on entries the MAP never reads is zeroed for every target: a NaN
    # dL/dz there (a loss that reads padding) must not reach the solver's check.
    theta = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 5])
    layer = make("arborescence", **options)
    z = layer(theta, lengths=lengths, generator=torch.Generator().manual_seed(0))
    w = torch.randn(2, 5, 5, dtype=torch.float64)
    w[0, 3:, :] = math.nan
    (z * torch.nan_to_num(w, nan=0.0)).sum().backward(retain_graph=True)
    want = theta.grad.clone()
    theta.grad = None
    z.backward(w)
    assert torch.isfinite(theta.grad).all()
    torch.testing.assert_close(theta.grad, want)
