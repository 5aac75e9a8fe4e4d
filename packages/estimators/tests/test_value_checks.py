"""Value and dtype checks of the perturbation-based layers and their noise.

A non-finite upstream gradient dL/dz is named as such (not blamed on the
scores, nor turned into a finite gradient), a user's solver must return finite
solutions, the layer's input is named ``scores`` / ``costs`` in dtype errors,
and the noise classes refuse a bad ``k`` or ``dtype`` with a clear error.
"""

from __future__ import annotations

import math

import pytest
import torch

import structgrad.estimators as E
from structgrad.distributions.checks import set_validation
from structgrad.solvers import InvalidScoresError


def top2(scores: torch.Tensor) -> torch.Tensor:
    """A user's batched solver: the two largest entries of each row."""
    idx = scores.topk(2, dim=-1).indices
    return torch.zeros_like(scores).scatter(-1, idx, 1.0)


PRESETS = ["imle", "aimle", "blackbox", "straight_through", "perturbed"]
SOLVERS = [("k_subset", {"k": 2}), (top2, {})]
CPU = torch.device("cpu")


@pytest.fixture
def no_value_checks():
    set_validation(False)
    try:
        yield
    finally:
        set_validation(True)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize(("solver", "options"), SOLVERS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_upstream_gradient_is_named(preset, solver, options, bad):
    theta = torch.randn(3, 5, requires_grad=True)
    layer = getattr(E, preset)(solver, **options)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    dy = torch.randn_like(z)
    dy[0, 1] = bad
    what = "NaN" if math.isnan(bad) else "an infinite value"
    with pytest.raises(InvalidScoresError, match=rf"upstream gradient dL/dz .* contains {what}"):
        z.backward(dy)
    assert theta.grad is None
    for key, value in layer.state_dict().items():  # AIMLE's β, ν, Δ are not updated
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("samples", [None, 3])
def test_non_finite_upstream_gradient_with_samples_and_mean(samples):
    theta = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    for reduce in ("none", "mean"):
        z = E.imle(top2, samples=samples, reduce=reduce)(theta)
        dy = torch.zeros_like(z)
        dy[..., 0, 3] = math.nan
        with pytest.raises(ValueError, match="upstream gradient"):
            z.backward(dy)


def _grads(layer, theta, lengths, dy):
    """``dL/dθ`` for the cotangent ``dy``, with the layer's noise seeded."""
    theta = theta.detach().clone().requires_grad_(True)
    z = layer(theta, lengths=lengths, generator=torch.Generator().manual_seed(0))
    z.backward(dy)
    return theta.grad


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", ["arborescence", "spanning_tree"])
def test_non_finite_upstream_gradient_off_read_entries_is_ignored(preset, name):
    # Padding beyond lengths, self-loops, edges into the root and -inf scores are
    # never read by the MAP: any value of dL/dz there is tolerated, as before.
    theta = torch.randn(2, 5, 5, dtype=torch.float64)
    theta[1, 1, 2] = theta[1, 2, 1] = -math.inf
    lengths = torch.tensor([3, 5])
    options = {"target": E.AdaptiveTarget().eval()} if preset == "aimle" else {}
    layer = getattr(E, preset)(name, **options)
    dy = torch.randn(2, 5, 5, dtype=torch.float64)
    clean = dy.clone()
    dy[0, 3:, :] = math.nan  # padding rows and columns of the first graph
    dy[0, :, 4] = math.inf
    dy[1, 1, 2] = dy[1, 2, 1] = math.nan  # a forbidden edge
    dy[1].diagonal()[:] = math.inf  # self-loops
    if name == "arborescence":
        dy[1, :, 0] = math.nan  # edges into the root
    clean[torch.isnan(dy) | torch.isinf(dy)] = 0.0
    got = _grads(layer, theta, lengths, dy)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, _grads(layer, theta, lengths, clean))


def test_a_tree_reads_both_triangles_of_the_upstream_gradient():
    # a spanning tree's edge ij gets dy_ij + dy_ji: a NaN below the diagonal is read
    theta = torch.randn(4, 4, requires_grad=True)
    z = E.imle("spanning_tree")(theta[None])
    dy = torch.zeros_like(z)
    dy[0, 3, 1] = math.nan
    with pytest.raises(ValueError, match="upstream gradient"):
        z.backward(dy)


def test_upstream_gradient_check_is_a_value_check(no_value_checks):
    theta = torch.randn(3, 5, requires_grad=True)
    z = E.straight_through(top2)(theta)
    dy = torch.ones_like(z)
    dy[0, 1] = math.nan
    z.backward(dy)  # off, nothing reads dL/dz: it flows through as a NaN
    assert math.isnan(theta.grad[0, 1]) and torch.isfinite(theta.grad[1:]).all()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_user_solver_output_must_be_finite(bad):
    theta = torch.randn(4, 6)
    layer = E.imle(lambda s: torch.full_like(s, bad))
    what = "NaN" if math.isnan(bad) else "an infinite value"
    with pytest.raises(ValueError, match=rf"solver <lambda> returned a solution holding {what}"):
        layer(theta)
    with pytest.raises(ValueError, match="solver <lambda>"):
        layer.sample_hard(theta)
    # one bad entry is enough
    entry = (torch.tensor([1]), torch.tensor([2]))
    one = E.imle(lambda s: top2(s).index_put(entry, torch.tensor([bad], dtype=s.dtype)))
    with pytest.raises(ValueError, match="returned a solution holding"):
        one(theta)


def test_user_solver_output_need_not_be_zero_one():
    theta = torch.randn(4, 6, requires_grad=True)
    z = E.imle(lambda s: 2.5 * top2(s) - 1.0)(theta)  # other points are fine
    assert set(z.unique().tolist()) == {-1.0, 1.5}
    z.sum().backward()
    big = E.straight_through(lambda s: torch.full_like(s, 3e38))(torch.randn(2, 6))
    assert torch.isfinite(big).all()  # finite entries whose sum overflows


def test_user_solver_output_check_is_a_value_check(no_value_checks):
    out = E.imle(lambda s: torch.full_like(s, math.nan))(torch.randn(4, 6))
    assert torch.isnan(out).all()


def test_user_solver_layer_compiles_with_its_checks():
    from structgrad.testing.compiled import assert_compiles

    assert_compiles(E.imle(top2), torch.randn(4, 7))
    assert_compiles(E.straight_through(top2), torch.randn(4, 7))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("make", "x", "name"),
    [
        (lambda: E.imle("k_subset", k=2), torch.randn(3, 5), "scores"),
        (lambda: E.aimle(top2), torch.randn(3, 5), "scores"),
        (lambda: E.blackbox("k_subset", k=2, minimize=True), torch.randn(3, 5), "costs"),
        (lambda: E.perturbed(top2, minimize=True), torch.randn(3, 5), "costs"),
        (lambda: E.straight_through("grid_path"), torch.rand(2, 3, 3), "costs"),
    ],
)
def test_half_precision_input_names_the_argument(dtype, make, x, name):
    layer = make()
    with pytest.raises(TypeError, match=rf"^{name} has dtype {dtype}"):
        layer(x.to(dtype))
    with pytest.raises(TypeError, match=rf"^{name} has dtype {dtype}"):
        layer.sample_hard(x.to(dtype))
    with pytest.raises(TypeError, match=rf"^{name} expects a torch.Tensor"):
        layer(x.tolist())


@pytest.mark.parametrize("k", ["a", [2], True])
def test_sum_of_gamma_k_of_the_wrong_type(k):
    with pytest.raises(TypeError, match="SumOfGamma k must be a real number"):
        E.SumOfGamma(k=k)


@pytest.mark.parametrize("k", [math.inf, math.nan, 0.0, -1.0])
def test_sum_of_gamma_k_out_of_range(k):
    with pytest.raises(ValueError, match="SumOfGamma k must be a finite number > 0"):
        E.SumOfGamma(k=k)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sum_of_gamma_refuses_half_precision(dtype):
    with pytest.raises(TypeError, match=rf"draws in float32 or float64, not dtype {dtype}"):
        E.SumOfGamma(k=2).sample((3, 4), dtype=dtype, device=CPU)
    x = E.SumOfGamma(k=2).sample((3, 4), dtype=torch.float32, device=CPU)
    assert x.dtype == torch.float32 and torch.isfinite(x).all()


@pytest.mark.parametrize("noise", [E.Gumbel(), E.Normal(), E.SumOfGamma(2.0)])
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32"])
def test_noise_refuses_a_non_floating_dtype(noise, dtype):
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        noise.sample((3,), dtype=dtype, device=CPU)
