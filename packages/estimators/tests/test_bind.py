"""bind_solver builds structure bindings from structgrad.distributions' Structure."""

import pickle
import re

import pytest
import torch

import structgrad.distributions as D
import structgrad.estimators as E

OPTIONS = {"k_subset": {"k": 3}, "arborescence": {"root": 1}}


def _scores(name, shape, gen):
    s = D.structure(name)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    # grid_path scores are costs: non-negative
    return x.abs() if s.minimize else x


def test_perturbation_structures_come_from_the_registry():
    linear = tuple(n for n in D.STRUCTURES if D.structure(n).nonlinear is None)
    assert linear == E.PERTURBATION_STRUCTURES
    assert "binary_tree" not in E.PERTURBATION_STRUCTURES


@pytest.mark.parametrize("name", E.PERTURBATION_STRUCTURES)
def test_binding_is_the_structures_map(name):
    s = D.structure(name)
    opts = OPTIONS.get(name, {})
    bound = E.bind_solver(name, **opts)
    assert bound.name == name and bound.trusted
    assert bound.event_ndim == s.event_dim and bound.upper == s.symmetric
    assert bound.minimize == s.minimize and bound.lengths == ("lengths" in s.option_names)
    assert bound.ones((6, 6)) == s.ones((6, 6), **opts)
    gen = torch.Generator().manual_seed(0)
    shape = (5, 6) if s.event_dim == 1 else (5, 6, 6)
    scores = _scores(name, shape, gen)
    x = -scores if bound.minimize else scores  # maximisation form
    assert torch.equal(bound.solve(x, s.event_dim), s.map(scores, **opts))
    if bound.lengths:
        lengths = torch.tensor([6, 2, 4, 3, 5])
        got = bound.solve(x, s.event_dim, lengths)
        assert torch.equal(got, s.map(scores, lengths=lengths, **opts))


def test_grid_path_clips_negative_costs_at_zero():
    costs = torch.randn(3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    bound = E.bind_solver("grid_path")
    want = D.structure("grid_path").map(costs.clamp(min=0.0))
    assert torch.equal(bound.solve(-costs, 2), want)


def test_options_are_checked_against_the_structure():
    cases = [
        (lambda: E.imle("k_subset", k=2, root=1), "option root is for 'arborescence' only"),
        (lambda: E.bind_solver("spanning_tree", root=0), "option root"),
        (lambda: E.bind_solver("spanning_tree", k=2), "k is for 'k_subset' only"),
        (lambda: E.bind_solver("k_subset"), "needs the subset size k"),
        (lambda: E.bind_solver("k_subset", k=2.5), "k must be an integer"),
        (lambda: E.bind_solver("k_subset", k=-1), "k must lie in"),
        (lambda: E.bind_solver("arborescence", root=1.0), "root must be an integer"),
        (lambda: E.bind_solver(lambda x: x, root=1), "options of structure names"),
        (lambda: E.bind_solver("tree"), r"unknown structure 'tree': use one of categorical"),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match):
            make()
    z = E.bind_solver("arborescence", root=2).solve(torch.randn(3, 5, 5), 2)
    assert not z[..., :, 2].any() and torch.equal(z.sum((-2, -1)), torch.full((3,), 4.0))


def test_binary_tree_is_rejected_with_its_reason():
    reason = D.structure("binary_tree").nonlinear
    assert reason is not None
    with pytest.raises(ValueError, match=re.escape(reason)):
        E.bind_solver("binary_tree")
    with pytest.raises(ValueError, match="score-function"):
        E.imle("binary_tree")


def test_a_bound_layer_pickles_and_runs():
    layer = E.imle("spanning_tree", noise="sog")
    again = pickle.loads(pickle.dumps(layer))
    theta = torch.randn(2, 5, 5)
    out = again(theta, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, layer(theta, generator=torch.Generator().manual_seed(0)))
    assert again.noise_for((5, 5)).k == 4.0


@pytest.mark.parametrize(
    "decorator",
    [E.straight_through(), E.blackbox(), E.imle(noise=None), E.imle(), E.aimle()],
    ids=["st", "blackbox", "imle-no-noise", "imle", "aimle"],
)
def test_a_solver_that_edits_its_input_touches_neither_the_scores_nor_the_gradient(decorator):
    # Without noise the user's solver received the caller's own scores: an
    # in-place shift changed the leaf parameter (and blackbox's backward).
    def top2(s):
        z = torch.zeros_like(s).scatter_(-1, s.topk(2, -1).indices, 1.0)
        s.neg_()  # after solving: the draw is right, its input is not
        return z

    def clean(s):
        return top2(s.clone())

    grads = []
    for solver in (top2, clean):
        theta = torch.tensor([[1.0, 3.0, 2.0, 0.0]], requires_grad=True)
        z = decorator(solver)(theta, generator=torch.Generator().manual_seed(0))
        (z * torch.arange(4.0)).sum().backward()
        assert torch.equal(theta.detach(), torch.tensor([[1.0, 3.0, 2.0, 0.0]]))
        grads.append(theta.grad)
    assert torch.equal(grads[0], grads[1])


def test_the_unknown_option_message_lists_what_this_solver_takes():
    # It listed k, root and event_dims for every solver (helper 65).
    with pytest.raises(ValueError, match="unknown option") as info:
        E.imle("spanning_tree", foo=1)
    listed = str(info.value).split("it takes ")[1].split(", ")
    assert "tau" in listed and not {"k", "root", "event_dims"} & set(listed)
    with pytest.raises(ValueError, match="unknown option") as info:
        E.aimle("arborescence", foo=1)
    assert "root" in str(info.value) and "event_dims" not in str(info.value)
    with pytest.raises(ValueError, match="unknown option") as info:
        E.blackbox(lambda x: x, foo=1)
    listed = str(info.value).split("it takes ")[1].split(", ")
    assert "event_dims" in listed and not {"k", "root"} & set(listed)
