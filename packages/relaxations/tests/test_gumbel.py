import math

import pytest
import torch

from structgrad.distributions.checks import OptionError
from structgrad.relaxations import (
    GumbelSoftmaxLayer,
    SSTLayer,
    binary_concrete,
    gumbel_sinkhorn,
    gumbel_softmax,
    hard_with_soft_gradient,
    independent_edges,
    relaxed_top_k,
    sample_gumbel,
    sinkhorn,
    sst,
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gumbel_noise_moments_and_placement(dtype: torch.dtype) -> None:
    g = sample_gumbel((200_000,), dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert g.dtype == dtype and torch.isfinite(g).all()
    assert g.mean().item() == pytest.approx(0.5772, abs=0.01)  # Euler-Mascheroni
    assert g.var().item() == pytest.approx(math.pi**2 / 6, rel=0.03)


def test_generator_makes_samples_reproducible() -> None:
    logits = torch.randn(3, 5)
    a = gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(1))
    b = gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(1))
    c = gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gumbel_softmax_is_a_distribution_and_the_argmax_law() -> None:
    logits = torch.tensor([1.0, 0.0, -1.0, -torch.inf])
    gen = torch.Generator().manual_seed(0)
    hard = gumbel_softmax(logits.expand(40_000, 4), 0.1, hard=True, generator=gen)
    assert torch.equal(hard.sum(-1), torch.ones(40_000)) and (hard[:, 3] == 0).all()
    freq = hard.mean(0)
    torch.testing.assert_close(freq, torch.softmax(logits, -1), atol=0.01, rtol=0)


def test_gradcheck_with_fixed_noise() -> None:
    logits = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)

    def f(x: torch.Tensor) -> torch.Tensor:
        return gumbel_softmax(x, 0.7, generator=torch.Generator().manual_seed(3))

    assert torch.autograd.gradcheck(f, (logits,))

    def g(x: torch.Tensor) -> torch.Tensor:
        return binary_concrete(x, 0.7, generator=torch.Generator().manual_seed(3))

    assert torch.autograd.gradcheck(g, (logits,))


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_finite_at_tiny_temperature_and_with_neg_inf(scale: float) -> None:
    logits = (torch.randn(8, 6) * scale).requires_grad_(True)
    for hard in (False, True):
        masked = logits.masked_fill(torch.eye(8, 6, dtype=torch.bool), -torch.inf)
        y = gumbel_softmax(masked, 1e-3, hard=hard)
        (y * torch.randn(8, 6)).sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(logits.grad).all()
        assert (y[torch.eye(8, 6, dtype=torch.bool)] == 0).all()
        z = binary_concrete(logits, 1e-3, hard=hard)
        assert torch.isfinite(z).all()


def test_hard_with_soft_gradient_values_and_gradients() -> None:
    soft = torch.tensor([0.2, 0.8], requires_grad=True)
    hard = torch.tensor([0.0, 1.0])
    out = hard_with_soft_gradient(hard, soft)
    assert torch.equal(out, hard)
    out.sum().backward()
    assert torch.equal(soft.grad, torch.ones(2))
    y = gumbel_softmax(torch.zeros(3, 4, requires_grad=True), 1.0, hard=True)
    assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_binary_concrete_law_and_tensor_tau() -> None:
    logits = torch.tensor([2.0, -1.0]).expand(50_000, 2)
    tau = torch.tensor([0.05, 0.05])
    y = binary_concrete(logits, tau, hard=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(y.mean(0), torch.sigmoid(logits[0]), atol=0.01, rtol=0)


def test_dims_batch_dtype_device() -> None:
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    y = gumbel_softmax(x, 0.5, dim=-2)
    assert y.dtype == torch.float64 and y.device == x.device
    torch.testing.assert_close(y.sum(-2), torch.ones(2, 3, 4, dtype=torch.float64))


@pytest.mark.parametrize(
    ("logits", "tau", "match"),
    [
        (torch.zeros(3), 0.0, "tau"),
        (torch.zeros(3), -1.0, "tau"),
        (torch.zeros(3), float("nan"), "tau"),
        (torch.tensor([0.0, float("nan")]), 1.0, "NaN"),
        (torch.full((2, 3), -torch.inf), 1.0, "-inf"),
        (torch.tensor(1.0), 1.0, "dimension"),
    ],
)
def test_bad_input(logits: torch.Tensor, tau: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gumbel_softmax(logits, tau)


def test_numpy_scalars_for_dim_and_tau() -> None:
    import numpy as np

    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    out = gumbel_softmax(x, np.float32(0.5), dim=np.int64(0))
    torch.testing.assert_close(out.sum(0), torch.ones(4))
    with pytest.raises(ValueError, match="dim must be an int"):
        gumbel_softmax(x, 0.5, dim=1.0)
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        gumbel_softmax(x, np.float32(-1.0))


def test_layer_flags_must_be_booleans() -> None:
    with pytest.raises(TypeError, match="hard must be True or False"):
        GumbelSoftmaxLayer(hard="no")
    with pytest.raises(TypeError, match="straight_through must be True or False"):
        SSTLayer("spanning_tree", straight_through="no")


_X = torch.zeros(3, 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda old: GumbelSoftmaxLayer(**old),
        lambda old: gumbel_softmax(_X, **old),
        lambda old: sinkhorn(_X, **old),
        lambda old: relaxed_top_k(_X, 2, **old),
        lambda old: binary_concrete(_X, **old),
        lambda old: gumbel_sinkhorn(_X, **old),
        lambda old: independent_edges(_X, **old),
        lambda old: sst("categorical", _X, **old),
        lambda old: SSTLayer("spanning_tree", **old),
    ],
)
@pytest.mark.parametrize("name", ["temperature", "temp", "sigma"])
def test_old_option_names_raise_a_value_error_naming_tau(call: object, name: str) -> None:
    # Python's TypeError ("unexpected keyword argument", or tau missing) was
    # what the fixed signatures gave; the layers built from options said this.
    # (An OptionError: a ValueError and a TypeError, so either except catches it.)
    with pytest.raises(OptionError, match=f"option '{name}' is now called 'tau'"):
        call({name: 0.5})  # type: ignore[operator]


def test_unknown_options_list_the_accepted_ones() -> None:
    with pytest.raises(OptionError, match=r"unknown option.*dim, generator, hard, logits, tau"):
        gumbel_softmax(_X, 0.5, axis=0)
    with pytest.raises(ValueError, match=r"GumbelSoftmaxLayer: unknown option.*hard, tau"):
        GumbelSoftmaxLayer(straight_through=True)
    with pytest.raises(ValueError, match=r"sinkhorn: unknown option.*anneal, log_alpha, n_iters"):
        sinkhorn(_X, iters=5)
    # the names taken still pass by keyword
    assert gumbel_softmax(logits=_X, tau=0.5, dim=0).sum(0).allclose(torch.ones(3))


def test_an_sst_layer_without_a_required_option_fails_when_built() -> None:
    # It was built and failed at its first call (no call can give k).
    with pytest.raises(ValueError, match=r"k_subset needs the option\(s\) \['k'\]"):
        SSTLayer("k_subset")
    assert SSTLayer("k_subset", k=2)(torch.randn(4, 5)).sum(-1).allclose(torch.full((4,), 2.0))


@pytest.mark.parametrize("tau", [1e-40, 1e-50, 1e-310])
def test_tiny_temperatures_give_the_hard_limit_not_nan(tau: float) -> None:
    # A subnormal tau overflowed the quotients to +inf (NaN); a Python float below
    # float32's range rounded to 0 (NaN, or "tau must be positive, got tensor(0.)").
    x = torch.tensor([0.0, 1.0, 2.0])
    gen = torch.Generator().manual_seed(0)
    for out in (
        gumbel_softmax(x, tau, generator=gen),
        relaxed_top_k(x, 1, tau, generator=gen),
        sst("categorical", x, tau, generator=gen),
    ):
        assert torch.isfinite(out).all() and set(out.tolist()) <= {0.0, 1.0} and out.sum() == 1
    edges = independent_edges(torch.randn(5, 5, generator=gen), tau, generator=gen)
    assert torch.isfinite(edges).all() and set(edges.flatten().tolist()) <= {0.0, 1.0}
    assert torch.isfinite(sinkhorn(torch.randn(3, 3, generator=gen), tau=tau)).all()
