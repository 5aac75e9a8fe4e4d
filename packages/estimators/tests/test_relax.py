import importlib.util
from pathlib import Path

import pytest
import torch

import structgrad.estimators as E

_spec = importlib.util.spec_from_file_location(
    "_score_helpers", Path(__file__).with_name("_score_helpers.py")
)
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)


def _relax(structure, **extra):
    event, options = H.CASES[structure]
    return E.RELAX(structure, event_shape=event, **options, **extra)


class SoftCritic(torch.nn.Module):
    """A relaxation critic: a learned scale times f at softmax(U / τ) (per row)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, u):
        soft = torch.softmax(u.flatten(-1) / 0.5, -1).reshape(u.shape)
        return self.scale * H.f(soft.reshape(-1, *u.shape[-1:])).reshape(u.shape[:-1])


@pytest.mark.parametrize("structure", H.STRUCTURES)
def test_relax_is_unbiased(structure):
    theta, _ = H.instance(structure)
    exact = H.exact_gradient(structure, theta, H.CASES[structure][1])
    layer = _relax(structure).double()
    rows = 20_000 if structure in ("categorical", "k_subset") else 10_000
    est = H.estimates(layer, theta, rows, seed=4)
    H.assert_unbiased(est, exact)


@pytest.mark.parametrize("structure", ["categorical", "k_subset"])
def test_relax_with_a_relaxation_critic_and_samples_is_unbiased(structure):
    theta, options = H.instance(structure)
    exact = H.exact_gradient(structure, theta, options)
    layer = E.relax(structure, critic=SoftCritic(), samples=2, **options)
    est = H.estimates(layer, theta, 20_000, seed=6)
    H.assert_unbiased(est, exact)


@pytest.mark.parametrize("structure", H.STRUCTURES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relax_gradients_are_finite_and_train_the_critic(structure, dtype):
    event, _ = H.CASES[structure]
    theta = torch.randn(2, 3, *event, dtype=dtype)
    if structure in ("categorical", "k_subset", "binary_tree"):
        theta[..., 0] = -torch.inf  # masked entries stay finite everywhere
    theta.requires_grad_(True)
    layer = _relax(structure)
    x = layer(theta, generator=torch.Generator().manual_seed(0))
    loss = H.f(x.reshape(-1, *x.shape[2:])).reshape(2, 3).to(dtype)
    out = layer.attach(loss)
    assert torch.equal(out, loss) and out.dtype == dtype
    out.mean().backward()
    assert torch.isfinite(theta.grad).all()
    grads = [p.grad for p in layer.critic.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_variance_term_reaches_the_critic_only():
    # An encoder upstream of the logits must get exactly the estimator, nothing
    # from the critic's variance objective.
    torch.manual_seed(0)
    enc = torch.nn.Linear(3, 5).double()
    inputs = torch.randn(64, 3, dtype=torch.float64)
    layer = E.relax("categorical", event_shape=(5,)).double()
    logits = enc(inputs)
    logits.retain_grad()
    x = layer(logits, generator=torch.Generator().manual_seed(1))
    layer.attach(H.f(x)).sum().backward()
    (want,) = torch.autograd.grad(enc(inputs), enc.weight, grad_outputs=logits.grad)
    torch.testing.assert_close(enc.weight.grad, want)


def test_critic_gradient_is_that_of_the_squared_estimator():
    # A one-parameter critic c(u) = a Σ u w: check ∂/∂a of Σ_rows |g|² by hand.
    w = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64))

        def forward(self, u):
            return self.a * (u * w).sum(-1)

    theta = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    layer = E.relax("categorical", critic=Linear())
    x = layer(theta, generator=torch.Generator().manual_seed(2))
    loss = H.f(x)
    u_tilde = E.conditional_utilities(
        "categorical",
        E.CategoricalTrace(x.argmax(-1)),
        theta.detach(),
        generator=_replayed(theta, 2),
    )
    layer.attach(loss).sum().backward()
    p = torch.softmax(theta.detach(), -1)
    score = x - p  # ∇ log p(T) for a categorical draw
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    # ∇c(z) = a w and ∇c(z̃) = a w ∂z̃/∂θ; g = (f − c(z̃)) score + ∇c(z) − ∇c(z̃)
    th = theta.detach().requires_grad_(True)
    zt = E.conditional_utilities(
        "categorical", E.CategoricalTrace(x.argmax(-1)), th, generator=_replayed(theta, 2)
    )
    torch.testing.assert_close(zt.detach(), u_tilde)
    (dzt,) = torch.autograd.grad((zt * w).sum(), th)
    g = (loss.unsqueeze(-1) - a * (zt.detach() * w).sum(-1, keepdim=True)) * score
    g = g + a * w - a * dzt
    (want,) = torch.autograd.grad(g.pow(2).sum(), a)
    torch.testing.assert_close(layer.critic.a.grad, want)
    torch.testing.assert_close(theta.grad, g.detach())


def _replayed(theta, seed):
    """A generator in the state RELAX's conditional draw saw (after the sample's draw)."""
    gen = torch.Generator().manual_seed(seed)
    torch.rand(theta.shape, dtype=theta.dtype, generator=gen)
    return gen


def test_state_dict_round_trip_and_generator_reproducibility():
    layer = E.relax("k_subset", k=2, event_shape=(6,))
    event = layer.critic.event_shape
    theta = torch.randn(8, *event, requires_grad=True)
    other = E.RELAX(layer.structure, event_shape=event, **layer.structure_options)
    other.load_state_dict(layer.state_dict())
    grads = []
    for mod in (layer, other):
        x = mod(theta, generator=torch.Generator().manual_seed(3))
        mod.attach(H.f(x.reshape(8, -1))).sum().backward()
        grads.append(theta.grad.clone())
        theta.grad = None
    assert torch.equal(grads[0], grads[1])
    for p, q in zip(layer.critic.parameters(), other.critic.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_no_grad_forward_attach_is_the_identity():
    layer = E.relax("categorical", event_shape=(4,))
    with torch.no_grad():
        x = layer(torch.randn(3, 4))
    loss = H.f(x)
    assert layer.attach(loss) is loss
    # logits that want a gradient: the draw has no critic terms, which is said
    # (attach returned the loss, and the logits silently got no gradient)
    theta = torch.randn(3, 4, requires_grad=True)
    with torch.no_grad():
        x = layer(theta)
    with pytest.raises(ValueError, match=r"under torch.no_grad\(\).*gives no gradient"):
        layer.attach(H.f(x))
    # An evaluation attaches under no_grad too: no gradient is asked for.
    with torch.no_grad():
        loss = H.f(layer(theta))
        assert layer.attach(loss) is loss


def test_relax_errors():
    with pytest.raises(ValueError, match="no baseline"):
        E.RELAX("categorical", event_shape=(4,), baseline="loo")
    with pytest.raises(ValueError, match="event_shape"):
        E.RELAX("categorical")
    with pytest.raises(ValueError, match="supported"):
        E.RELAX("grid_path", event_shape=(3, 3))
    layer = E.RELAX("categorical", event_shape=(4,))
    with pytest.raises(ValueError, match="call the layer"):
        layer.attach(torch.zeros(3))
    with pytest.raises(ValueError, match="built for events"):
        layer(torch.zeros(3, 5, requires_grad=True))
    bad = E.RELAX("categorical", critic=lambda u: u.sum())
    with pytest.raises(ValueError, match="one value per row"):
        bad(torch.zeros(3, 4, requires_grad=True))


@pytest.mark.parametrize("samples", [None, 2])
def test_relax_on_a_0_subset_is_exactly_zero(samples):
    """k = 0: the sample is constant, so is f: the estimate and the critic's gradient are 0."""
    layer = E.relax("k_subset", k=0, event_shape=(4,), samples=samples)
    theta = torch.randn(3, 4, requires_grad=True)
    x = layer(theta, generator=torch.Generator().manual_seed(0))
    assert (x == 0).all()
    out = layer.attach(H.f(x.reshape(-1, 4)).reshape(x.shape[:-1]) + 1.0)
    out.sum().backward()
    assert torch.equal(theta.grad, torch.zeros_like(theta))
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in layer.critic.parameters())


def _padded(structure, lengths, seed):
    """Logits [B, n, n] with garbage on the entries no trace reads, and their mask."""
    n = 5
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(len(lengths), n, n, dtype=torch.float64, generator=g)
    inside = torch.arange(n) < torch.tensor(lengths)[:, None]
    unread = ~(inside[:, :, None] & inside[:, None, :])
    if structure == "spanning_tree":
        theta = torch.triu(theta, 1) + torch.triu(theta, 1).mT
        unread = unread | ~torch.ones(n, n, dtype=torch.bool).triu(1)
    else:  # arborescence rooted at 1: no self-loop, nothing into the root
        unread = unread | torch.eye(n, dtype=torch.bool)
        unread[:, :, 1] = True
    return theta, unread


@pytest.mark.parametrize("structure", ["spanning_tree", "arborescence"])
def test_relax_is_exactly_zero_where_nothing_is_read(structure):
    """Padding beyond per-call lengths, self-loops, the root's column: exact zeros, and
    the default critic does not read them (garbage there changes nothing)."""
    lengths = [5, 3, 2]
    options = {"root": 1} if structure == "arborescence" else {}
    theta, unread = _padded(structure, lengths, seed=3)
    other = torch.where(unread, 100.0 * torch.randn_like(theta), theta)
    first = _relax_grads(structure, theta, lengths, options)
    second = _relax_grads(structure, other, lengths, options)
    for (grad, _), name in zip((first, second), ("theta", "other"), strict=True):
        assert torch.equal(grad[unread], torch.zeros_like(grad[unread])), name
        assert (grad[~unread] != 0).any(), name
    assert torch.equal(first[0], second[0])
    for p, q in zip(first[1], second[1], strict=True):
        assert torch.equal(p, q)


def _relax_grads(structure, theta, lengths, options):
    torch.manual_seed(0)  # the same critic weights for every call
    layer = E.relax(structure, event_shape=theta.shape[-2:], **options).double()
    t = theta.clone().requires_grad_(True)
    x = layer(t, lengths=torch.tensor(lengths), generator=torch.Generator().manual_seed(4))
    layer.attach(H.f(x)).sum().backward()
    return t.grad, [p.grad for p in layer.critic.parameters()]


def test_relax_with_lengths_is_unbiased():
    from structgrad.testing.traces import exact_expectation

    theta, unread = _padded("spanning_tree", [3], seed=5)
    small = theta[0, :3, :3].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(exact_expectation("spanning_tree", small, H.f), small)
    exact = torch.zeros_like(theta[0])
    exact[:3, :3] = grad
    layer = E.relax("spanning_tree", event_shape=(5, 5)).double()
    lengths = torch.full((10_000,), 3)

    def loss(x):
        return H.f(x[:, :3, :3])

    th = theta[0].expand(10_000, 5, 5).clone().requires_grad_(True)
    x = layer(th, lengths=lengths, generator=torch.Generator().manual_seed(6))
    layer.attach(loss(x)).sum().backward()
    assert (th.grad[:, unread[0]] == 0).all()
    H.assert_unbiased(torch.triu(th.grad, 1), torch.triu(exact, 1))
