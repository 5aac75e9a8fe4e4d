import copy
import functools
import io
import re
from pathlib import Path

import pytest
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers
from structgrad.solvers import InvalidScoresError


def torch_top3(scores):
    """A user solver: top-3 mask with torch.topk."""
    idx = scores.topk(3, dim=-1).indices
    return torch.zeros_like(scores).scatter_(-1, idx, 1.0)


def test_decorator_makes_a_stateful_module():
    @E.aimle(target=E.AdaptiveTarget(beta=0.0, step=1e-2), samples=2)
    def layer(scores):
        """Differentiable top-3."""
        return torch_top3(scores)

    assert isinstance(layer, torch.nn.Module)
    assert layer.__name__ == "layer" and "top-3" in layer.__doc__
    assert layer.__wrapped__(torch.tensor([[3.0, 1, 2, 0]])).tolist() == [[1, 1, 1, 0]]
    theta = torch.randn(5, 8, requires_grad=True)
    z = layer(theta)
    assert z.shape == (2, 5, 8)
    z.sum().backward()
    assert float(layer.state_dict()["target.beta"]) == pytest.approx(0.01)


@E.aimle(target=E.AdaptiveTarget(beta=0.0, step=1e-2))
def decorated_top3(scores):
    """A module-level solver under the decorator: the layer takes its name."""
    return torch_top3(scores)


def test_a_decorated_layer_pickles_with_its_state():
    # pickle found the module-level name taken by the layer, not the function,
    # so torch.save of a model holding the layer failed.
    import inspect
    import pickle

    theta = torch.randn(5, 8, requires_grad=True)
    decorated_top3(theta).sum().backward()  # beta moves to 0.01
    model = torch.nn.Sequential(torch.nn.Identity(), decorated_top3)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for back in (torch.load(buffer, weights_only=False)[1], copy.deepcopy(decorated_top3)):
        assert back is not decorated_top3 and float(back.target.beta) == pytest.approx(0.01)
        draws = [
            f(theta.detach(), generator=torch.Generator().manual_seed(0))
            for f in (back, decorated_top3)
        ]
        assert torch.equal(*draws)
    assert inspect.unwrap(decorated_top3)(torch.tensor([[3.0, 1, 2, 0]])).tolist() == [[1, 1, 1, 0]]

    @E.imle(noise=None)
    def local(scores):
        return torch_top3(scores)

    assert copy.deepcopy(local).solver.fn is local.solver.fn  # a function: by reference
    with pytest.raises((pickle.PicklingError, AttributeError), match="local"):
        pickle.dumps(local)
    partial = E.imle(noise=None)(functools.partial(torch_top3))
    assert torch.equal(pickle.loads(pickle.dumps(partial))(theta), partial(theta))


class _Negated:
    """A callable solver with an attribute named like the wrapper's."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, scores):
        return self.fn(-scores)


def test_a_decorated_callable_is_called_itself():
    scores = torch.tensor([[3.0, 1, 2, 0, 5]])
    want = [[0.0, 1, 1, 1, 0]]  # the 3 smallest
    assert E.imle(_Negated(torch_top3), noise=None)(scores).tolist() == want
    layer = E.imle(noise=None)(_Negated(torch_top3))
    assert layer(scores).tolist() == want
    assert layer.solver.name == "_Negated"  # not the wrapper's class name
    copied = copy.deepcopy(layer)  # a stateful callable is copied, a function is not
    assert copied.solver.fn._solver is not layer.solver.fn._solver
    assert copied(scores).tolist() == want


@pytest.mark.parametrize("factory", [E.imle, E.aimle, E.straight_through, E.blackbox, E.perturbed])
def test_structure_name_and_callable_agree(factory):
    theta = torch.randn(4, 9, dtype=torch.float64)
    outs = []
    for layer in [factory("k_subset", k=3), factory(functools.partial(solvers.top_k, k=3))]:
        t = theta.clone().requires_grad_(True)
        z = layer(t, generator=torch.Generator().manual_seed(0))
        (z * torch.arange(9.0, dtype=torch.float64)).sum().backward()
        outs.append((z, t.grad))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert torch.equal(
        outs[0][0], factory(torch_top3)(theta, generator=torch.Generator().manual_seed(0))
    )


ALL = [E.IMLE, E.AIMLE, E.StraightThrough, E.Blackbox, E.PerturbedOptimizer]


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("structure", E.PERTURBATION_STRUCTURES)
def test_every_method_runs_on_every_structure(cls, structure):
    opts = {"k": 2} if structure == "k_subset" else {}
    layer = cls(structure, **opts)
    theta = torch.rand(2, 3, 5, 5, dtype=torch.float32)
    if structure in ("k_subset", "categorical"):
        theta = theta[..., 0]
    theta.requires_grad_(True)
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    assert z.shape == theta.shape and z.dtype == torch.float32
    (z * torch.randn_like(z)).sum().backward()
    assert theta.grad.shape == theta.shape and torch.isfinite(theta.grad).all()


def test_sog_k_comes_from_the_structure():
    assert E.imle("spanning_tree", noise="sog").noise_for((6, 6)).k == 5
    assert E.imle("k_subset", k=4, noise="sog").noise_for((9,)).k == 4
    assert E.imle("matching", noise=E.SumOfGamma(terms=3)).noise_for((7, 7)).k == 7
    with pytest.raises(ValueError, match="SumOfGamma"):
        E.imle(torch_top3, noise="sog")(torch.randn(2, 5))
    assert E.imle(torch_top3, noise=E.SumOfGamma(3.0))(torch.randn(2, 5)).shape == (2, 5)


def test_event_dims_for_user_solvers():
    seen = []

    def solver(x):
        seen.append(tuple(x.shape))
        return torch_top3(x)

    layer = E.imle(solver, event_dims=1, samples=2)
    assert layer(torch.randn(3, 4, 6)).shape == (2, 3, 4, 6)
    assert seen == [(24, 6)]
    seen.clear()
    E.imle(solver, samples=2, marginal_samples=3)(torch.randn(5, 6))  # default: dims 1:
    assert seen == [(30, 6)]


def bad_shape(x):
    return torch_top3(x)[:, :-1]


def bad_dtype(x):
    return torch_top3(x).long()


def not_a_tensor(x):
    return torch_top3(x).numpy()


@pytest.mark.parametrize(
    ("solver", "match"),
    [
        (bad_shape, r"bad_shape returned shape \(\d+, 5\) for scores of shape \(\d+, 6\)"),
        (bad_dtype, r"returned dtype torch.int64 for torch.float32 scores"),
        (not_a_tensor, r"returned ndarray, not a Tensor"),
    ],
)
@pytest.mark.parametrize("factory", [E.imle, E.straight_through, E.perturbed])
def test_wrong_solver_output_is_a_clear_error(solver, match, factory):
    with pytest.raises(ValueError, match=match):
        factory(solver)(torch.randn(4, 6))


def test_bad_options_are_clear_errors():
    cases = [
        (lambda: E.imle("tree"), "unknown structure 'tree'"),
        (lambda: E.imle("binary_tree"), "score-function"),
        (lambda: E.imle("k_subset"), "needs the subset size k"),
        (lambda: E.imle("matching", k=2), "k is for 'k_subset' only"),
        (lambda: E.imle("k_subset", k=2, event_dims=1), "fixed by the structure"),
        (lambda: E.imle("grid_path", minimize=False), "minimisation"),
        (lambda: E.imle(torch_top3, k=2), "options of structure names"),
        (lambda: E.imle(torch_top3, event_dims=0), "event_dims"),
        (lambda: E.imle("k_subset", k=2, samples=0), "samples"),
        (lambda: E.imle("k_subset", k=2, reduce="sum"), "reduce"),
        (lambda: E.imle("k_subset", k=2, tau=-1), "tau"),
        (lambda: E.imle("k_subset", k=2, temperature=0.5), "'temperature' is now called 'tau'"),
        (lambda: E.perturbed("k_subset", k=2, sigma=0.5), "'sigma' is now called 'tau'"),
        (lambda: E.aimle("k_subset", k=2, target_temperature=1), "now called 'tau_target'"),
        (lambda: E.imle("k_subset", k=2, target="adaptive"), "target"),
        (lambda: E.imle(3), "structure name or a callable"),
        (lambda: E.imle("k_subset", k=2)(torch.ones(4, dtype=torch.long)), "floating"),
        (lambda: E.imle("spanning_tree")(torch.ones(4)), "event dim"),
        (lambda: E.imle("k_subset", k=9)(torch.ones(4)), "k"),
        (lambda: E.imle("k_subset", k=2)([1.0, 2.0]), "torch.Tensor"),
        (lambda: E.imle(torch_top3)(torch.ones(4)), "batch dim"),
        (lambda: E.Target(-1.0), "lam"),
        (lambda: E.Target(0.0), "lam must be a finite number > 0"),
        (
            lambda: E.imle("k_subset", k=2, foo=1),
            r"imle\('k_subset'\): unknown option\(s\) foo; it takes .*tau",
        ),
        (
            lambda: E.aimle("k_subset", k=2, lam=1),
            r"aimle\('k_subset'\): unknown option.*difference",
        ),
        (
            lambda: E.blackbox("matching", difference="central"),
            r"blackbox\('matching'\): unknown.*lam",
        ),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match):
            make()


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("structure", E.PERTURBATION_STRUCTURES)
def test_bound_layers_pickle(cls, structure):
    """torch.save(module) and worker processes need picklable layers (no lambdas inside)."""
    layer = cls(structure, **({"k": 2} if structure == "k_subset" else {}))
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    theta = (
        torch.rand(2, 5, 5) if structure not in ("k_subset", "categorical") else torch.rand(2, 5)
    )
    gen = functools.partial(torch.Generator().manual_seed, 0)
    assert torch.equal(again(theta, generator=gen()), layer(theta, generator=gen()))
    assert again.solver.ones((5, 5)) == layer.solver.ones((5, 5))


def _argmax_solver(s: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(s.argmax(-1), s.shape[-1]).to(s.dtype)


@pytest.mark.parametrize("preset", ["imle", "aimle", "blackbox", "straight_through", "perturbed"])
def test_a_user_solver_layer_refuses_nan_and_the_wrong_infinity(preset):
    # They ran on NaN / +inf scores and gave finite gradients, where the same
    # layers on a structure name refuse them (a diverged run went on quietly).
    nan = torch.tensor([[torch.nan, 1.0, 0.0], [0.0, 1.0, 2.0]])
    layer = getattr(E, preset)(_argmax_solver)
    with pytest.raises(InvalidScoresError, match=r"^scores contains NaN"):
        layer(nan)
    with pytest.raises(InvalidScoresError, match=r"^scores contains \+inf"):
        layer(torch.tensor([[torch.inf, 1.0, 0.0]]))
    z = layer(torch.tensor([[-torch.inf, 1.0, 2.0]]))  # -inf: forbidden, as ours
    assert z[0, 0] == 0 and torch.isfinite(z).all()
    costs = getattr(E, preset)(_argmax_solver, minimize=True)
    with pytest.raises(
        InvalidScoresError, match=r"^costs contains -inf; costs must be finite or \+inf"
    ):
        costs(torch.tensor([[-torch.inf, 1.0, 2.0]]))


def test_costs_of_a_structure_name_the_infinity_as_given():
    # k_subset with minimize=True: -inf costs were "scores contains +inf" (the
    # solver reads -costs); +inf costs forbid their item.
    layer = E.blackbox("k_subset", k=1, minimize=True)
    with pytest.raises(InvalidScoresError, match=r"^costs contains -inf"):
        layer(torch.tensor([[-torch.inf, 1.0, 2.0]]))
    assert layer(torch.tensor([[torch.inf, 1.0, 2.0]])).tolist() == [[0.0, 1.0, 0.0]]
    # grid_path has no forbidden costs: NaN and both infinities get its own message
    for bad in (torch.nan, torch.inf, -torch.inf):
        costs = torch.rand(1, 4, 4)
        costs[0, 1, 1] = bad
        with pytest.raises(InvalidScoresError, match="grid_path costs must be finite"):
            E.imle("grid_path")(costs)


def test_grid_path_takes_costs():
    costs = torch.rand(2, 5, 5, requires_grad=True)
    layer = E.aimle("grid_path", noise="sog", tau=0.5)
    z = layer(costs)
    assert z[:, 0, 0].eq(1).all() and z[:, -1, -1].eq(1).all()
    z.sum().backward()
    assert torch.isfinite(costs.grad).all()


def test_module_behaviour():
    layer = E.aimle("k_subset", k=2, difference="central")
    text = repr(layer)
    assert "difference='central'" in text and "beta=" in text
    layer = layer.to(torch.float32)
    assert layer.target.beta.dtype == torch.float32
    layer.eval()
    assert not layer.target.training


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip():
    layer = E.aimle("k_subset", k=2).cuda()
    theta = torch.randn(3, 5, device="cuda", requires_grad=True)
    z = layer(theta, generator=torch.Generator("cuda").manual_seed(0))
    z.sum().backward()
    assert z.device.type == "cuda" and theta.grad.device.type == "cuda"


def test_readme_example_runs():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    section = text.split("## Perturbation-based estimators", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(readme), "exec"), {})


def test_presets_are_configurations_of_one_layer():
    layers = [E.imle, E.aimle, E.blackbox, E.straight_through, E.perturbed]
    rules = [E.FiniteDifference, E.FiniteDifference, E.FiniteDifference, E.Identity, E.NoiseScore]
    for preset, rule in zip(layers, rules, strict=True):
        layer = preset("k_subset", k=2)
        assert type(layer) is E.SolverLayer and isinstance(layer.gradient, rule)
    # AIMLE is IMLE with an adaptive target: same noise, same estimate
    theta = torch.randn(5, 6)
    grads = []
    for preset in (E.imle, E.aimle):
        t = theta.clone().requires_grad_(True)
        layer = preset("k_subset", k=2, target=E.AdaptiveTarget(0.5), difference="central")
        z = layer(t, generator=torch.Generator().manual_seed(3))
        (z * torch.arange(6.0)).sum().backward()
        grads.append(t.grad)
    torch.testing.assert_close(grads[0], grads[1])
    # the class-style names are the same presets
    assert E.IMLE is E.imle and E.PerturbedOptimizer is E.perturbed


def test_boolean_settings_must_be_booleans() -> None:
    # Strings were truthy: scale="no" scaled, minimize="no" minimised.
    with pytest.raises(TypeError, match="scale must be True or False"):
        E.AdaptiveTarget(scale="no")
    with pytest.raises(TypeError, match="minimize must be True or False"):
        E.imle("k_subset", k=2, minimize="no")


def test_other_libraries_names_point_to_ours() -> None:
    with pytest.raises(ValueError, match=r"'lambda' is called 'target' here \(target=Target"):
        E.imle("k_subset", k=3, **{"lambda": 2.0})
    with pytest.raises(ValueError, match="'lambda_' is called 'lam' here"):
        E.blackbox("k_subset", k=3, lambda_=2.0)
    with pytest.raises(ValueError, match="'nb_samples' is called 'samples' here"):
        E.imle("k_subset", k=3, nb_samples=3)


def test_a_fixed_target_past_the_dtype_range_is_capped() -> None:
    # λ·dL/dz overflowed to +inf and the solver refused it ("scores contains +inf").
    theta = torch.tensor([[1.0, 0.5, float("-inf"), 0.2, 0.1, 0.0]], requires_grad=True)
    layer = E.imle("k_subset", k=2, target=E.Target(1e39))
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    (z * torch.tensor([-5.0, 5, 5, 5, -5, 5])).sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
