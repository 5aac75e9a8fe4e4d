"""Every (structure, method) of METHODS follows the one latent-layer contract."""

from __future__ import annotations

import math

import pytest
import torch

from structgrad.distributions import LatentLayer
from structgrad.distributions.checks import OptionError
from structgrad.models import METHODS, latent

from ._nri_setup import N_NODES, options_for

PAIRS = [(s, m) for s, methods in METHODS.items() for m in methods]
SHAPES = {
    "categorical": (3, 4),
    "k_subset": (3, 6),
    "binary_tree": (3, 5),
    "edges": (3, N_NODES, N_NODES),
}


def _options(structure: str, method: str) -> dict:
    opts = options_for(structure, method)
    if structure == "k_subset":
        opts["k"] = 2
    if method == "relax":
        opts["event_shape"] = SHAPES.get(structure, (3, N_NODES, N_NODES))[1:]
    return opts


@pytest.mark.parametrize(("structure", "method"), PAIRS)
def test_contract(structure: str, method: str) -> None:
    layer = latent(structure, method, **_options(structure, method))
    # the family's own layer, not a wrapper, with its method name
    assert isinstance(layer, LatentLayer) and layer.method == method
    assert not any(isinstance(m, LatentLayer) for m in layer.children())
    theta = torch.randn(SHAPES.get(structure, (3, N_NODES, N_NODES)), dtype=torch.float64)
    theta.requires_grad_(True)
    z = layer(theta, lengths=None, generator=torch.Generator().manual_seed(0))
    event_ndim = 1 if structure in ("categorical", "k_subset") else 2  # of the sample
    loss = (
        (z * torch.randn(z.shape[z.ndim - event_ndim :], dtype=z.dtype))
        .flatten(z.ndim - event_ndim)
        .sum(-1)
    )
    out = layer.attach(loss, z)
    assert out.shape == loss.shape and torch.equal(out.detach(), loss.detach())
    out.sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
    # state round-trips through state_dict
    other = latent(structure, method, **_options(structure, method))
    other.load_state_dict(layer.state_dict())
    hard = layer.sample_hard(theta, generator=torch.Generator().manual_seed(1))
    assert not hard.requires_grad and set(hard.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(("structure", "method"), PAIRS)
def test_unknown_options_list_the_accepted_ones(structure: str, method: str) -> None:
    match = r"unknown option\(s\) no_such_option; it takes .*(tau|samples)"
    with pytest.raises(OptionError, match=match):  # a TypeError too, as Python's
        latent(structure, method, **_options(structure, method), no_such_option=1)


@pytest.mark.parametrize("method", ["sst", "imle", "aimle", "ste", "perturbed"])
@pytest.mark.parametrize("old", ["temperature", "sigma"])
def test_old_names_say_tau(method: str, old: str) -> None:
    with pytest.raises(OptionError, match=f"'{old}' is now called 'tau'"):
        latent("spanning_tree", method, **{old: 0.5})


def test_score_attach_takes_the_draw_and_keeps_nothing_hidden() -> None:
    layer = latent("k_subset", "t-reinforce+", k=2)
    theta = torch.randn(4, 6, requires_grad=True)
    first = layer.draw(theta, generator=torch.Generator().manual_seed(0))
    z = layer(theta, generator=torch.Generator().manual_seed(1))
    assert layer.last_draw is not None and layer.last_draw.sample is z
    # the earlier draw's loss is attached through its Draw, not the layer's last
    loss = (first.sample * torch.arange(6.0)).sum(-1)
    layer.attach(loss, first).mean(0).sum().backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="not this layer's last draw"):
        layer.attach(loss, first.sample)


@pytest.mark.parametrize("method", ["reinforce", "t-reinforce+", "relax"])
def test_old_names_on_methods_without_tau_say_there_is_none(method: str) -> None:
    with pytest.raises(ValueError, match="'temperature' \\(now called 'tau'\\) is not taken"):
        latent("k_subset", method, k=2, event_shape=(5,), temperature=0.5)


@pytest.mark.parametrize("method", ["t-reinforce+", "e-reinforce+", "t-reinforce"])
def test_attach_refuses_a_loss_reduced_over_the_samples(method: str) -> None:
    # A scalar copied to every sample makes the leave-one-out signal exactly zero.
    layer = latent("k_subset", method, k=3, samples=3)
    theta = torch.randn(8, 6, requires_grad=True)
    x = layer(theta)
    target = torch.linspace(0, 1, 6)
    with pytest.raises(ValueError, match=r"per-sample loss of shape \[K, \*batch\] = \(3, 8\)"):
        layer.attach(((x - target) ** 2).sum(-1).mean())
    layer.attach(((x - target) ** 2).sum(-1)).sum().backward()  # [K, B]: fine
    assert theta.grad is not None and bool(theta.grad.abs().sum() > 0)


def test_relax_default_critic_names_a_bad_root() -> None:
    for root, message in ((4, r"root must lie in \[0, 3\]"), (1.5, "root must be an integer")):
        with pytest.raises(ValueError, match=message):
            latent("arborescence", "relax", root=root, event_shape=(4, 4))
    with pytest.raises(ValueError, match=r"event_shape must have 2 dim\(s\) for arborescence"):
        latent("arborescence", "relax", event_shape=(4,))  # its critic was built for it
    with pytest.raises(ValueError, match=r"event_shape must have 1 dim\(s\) for k_subset"):
        latent("k_subset", "relax", k=2, event_shape=(5, 5))  # not a batch of 5


@pytest.mark.parametrize("method", METHODS["k_subset"])
def test_k_subset_rows_without_k_finite_scores_are_refused(method: str) -> None:
    # top-k would return a -inf item: every method now raises, as sst did.
    layer = latent("k_subset", method, **_options("k_subset", method))
    short = torch.tensor([[0.3, -math.inf, -math.inf, -math.inf, -math.inf, -math.inf]])
    with pytest.raises(ValueError, match="leave no k_subset"):
        layer(short)
    room = torch.tensor([[0.3, 1.0, -math.inf, -math.inf, -math.inf, -math.inf]])
    z = layer(room)
    assert bool((z[..., 2:] == 0).all()) and bool((z[..., :2] == 1).all())


GRAPH_PAIRS = [
    (structure, method)
    for structure in ("spanning_tree", "arborescence", "matching")
    for method in METHODS[structure]
]


@pytest.mark.parametrize(("structure", "method"), GRAPH_PAIRS)
def test_graphs_whose_minus_inf_entries_leave_no_structure_are_refused(
    structure: str, method: str
) -> None:
    # The solvers take a -inf edge only when every structure does; the layers took
    # it silently (a MAP with a forbidden edge and a finite loss).
    layer = latent(structure, method, **_options(structure, method))
    cut = torch.randn(2, N_NODES, N_NODES, dtype=torch.float64)
    cut[1, 2, :] = cut[1, :, 2] = -math.inf  # graph 1: vertex 2 cut off (no row / column)
    if structure == "matching" and not layer.pathwise:
        message = "-inf entries are not supported"  # score-function traces refuse any -inf
    else:
        message = "leave no|do not connect|no permutation"
    with pytest.raises(ValueError, match=message):
        layer(cut, generator=torch.Generator().manual_seed(0))
    room = torch.randn(2, N_NODES, N_NODES, dtype=torch.float64)
    room[1, 2, 3] = room[1, 3, 2] = -math.inf  # one forbidden edge (both directions)
    if message.startswith("-inf"):
        return
    z = layer(room, generator=torch.Generator().manual_seed(0))
    assert float(z[..., 1, 2, 3].abs().max()) < 1e-6 and float(z[..., 1, 3, 2].abs().max()) < 1e-6


@pytest.mark.parametrize(
    ("structure", "method"),
    [(s, m) for s in ("k_subset", "arborescence") for m in METHODS[s]],
)
def test_bad_integer_options_are_refused_at_build(structure: str, method: str) -> None:
    # They were accepted until the first forward (sst refused them at once).
    name = "k" if structure == "k_subset" else "root"
    base = _options(structure, method)
    for bad, message in ((-1, "must lie in >= 0"), ("2", "must be an integer"), (None, "")):
        # (k=None reads as a missing k to the perturbation layers, and they say so)
        missing = "|needs the subset size k" if bad is None else ""
        with pytest.raises(ValueError, match=f"{name} {message or 'must be an integer'}{missing}"):
            latent(structure, method, **{**base, name: bad})


def test_relax_default_critic_names_a_badly_typed_event_shape() -> None:
    for bad in ("ab", (2.5, 4), (True, 4), [0, 4]):
        with pytest.raises(ValueError, match="event_shape must be a non-empty tuple"):
            latent("spanning_tree", "relax", event_shape=bad)


@pytest.mark.parametrize(
    ("structure", "method", "flag"),
    [
        ("spanning_tree", "sst", "straight_through"),
        ("edges", "indep", "symmetric"),
        ("edges", "indep", "categorical"),
        ("edges", "indep", "straight_through"),
    ],
)
def test_boolean_options_must_be_booleans(structure: str, method: str, flag: str) -> None:
    # A string was truthy: straight_through="False" gave hard samples.
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        latent(structure, method, **{flag: "False"})


@pytest.mark.parametrize(
    "method", ["reinforce", "nvil", "e-reinforce", "t-reinforce", "e-reinforce+", "relax"]
)
def test_matching_score_function_layers_refuse_masks(method: str) -> None:
    # The greedy crossing sampler took a -inf pair in 1 draw of 6 (3 x 3, one masked entry).
    layer = latent("matching", method, **_options("matching", method))
    x = torch.randn(4, 3, 3, dtype=torch.float64)
    x[:, 0, 0] = -math.inf
    with pytest.raises(ValueError, match="-inf entries are not supported for matching"):
        layer(x)


def test_straight_through_methods_refuse_the_flag_that_undoes_them() -> None:
    # st with hard=False was a soft Gumbel-softmax that still called itself "st".
    with pytest.raises(ValueError, match="for hard=False use 'gumbel-softmax'"):
        latent("categorical", "st", hard=False)
    with pytest.raises(ValueError, match="for straight_through=False use 'sst'"):
        latent("k_subset", "st-sst", k=2, straight_through=False)
    with pytest.raises(ValueError, match="hard must be True or False"):
        latent("categorical", "st", hard="no")
    assert latent("categorical", "st", hard=True).hard
    assert latent("k_subset", "st-sst", k=2, straight_through=True).straight_through
