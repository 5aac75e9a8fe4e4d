"""Every per-structure decision of the factory comes from ``structgrad.distributions``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import structgrad.solvers as solvers
from structgrad.distributions import STRUCTURES, structure
from structgrad.distributions.checks import OptionError
from structgrad.models import METHODS, latent, map_sample

SST = ("sst", "st-sst")
SOLVER = ("imle", "aimle", "ste", "blackbox", "perturbed")
SCORE = ("reinforce", "nvil", "e-reinforce", "t-reinforce", "e-reinforce+", "t-reinforce+", "relax")

# The table as it was written out by hand before it was derived from the Structures.
TABLE: dict[str, tuple[str, ...]] = {
    "spanning_tree": (*SST, *SOLVER, *SCORE),
    "k_subset": (*SST, *SOLVER, *SCORE),
    "arborescence": (*SST, *SOLVER, *SCORE),
    "categorical": ("gumbel-softmax", "st", *SOLVER, *SCORE),
    "matching": (*SST, *SOLVER, *SCORE),
    "binary_tree": SCORE,
    "edges": ("indep",),
}

SCORES: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "categorical": ((3, 6), {}),
    "k_subset": ((3, 6), {"k": 2}),
    "spanning_tree": ((3, 5, 5), {"lengths": torch.tensor([2, 5, 4])}),
    "arborescence": ((3, 5, 5), {"root": 1}),
    "matching": ((3, 5, 5), {}),
    "binary_tree": ((3, 6), {"lengths": torch.tensor([6, 1, 4])}),
    "grid_path": ((2, 4, 5), {}),
}


def _gen(seed: int) -> torch.Generator:
    """Every draw of this module uses its own generator: the global RNG is left alone."""
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", [*STRUCTURES, "edges"])
def test_methods_match_the_table(name: str) -> None:
    assert METHODS.get(name) == TABLE.get(name)


def test_methods_has_nothing_else() -> None:
    assert METHODS == TABLE
    assert set(SCORES) == set(STRUCTURES)


def test_latent_takes_a_structure_instance() -> None:
    tree = structure("spanning_tree")
    layer = latent(tree, "sst", tau=0.5)
    assert layer.structure is tree
    assert "structure='spanning_tree'" in repr(layer)
    theta = torch.randn(2, 5, 5, generator=_gen(1), dtype=torch.float64, requires_grad=True)
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.triu(1).sum((-1, -2)), torch.full((2,), 4.0, dtype=z.dtype))
    z.sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
    assert latent("spanning_tree", "sst").structure is tree


@pytest.mark.parametrize("name", STRUCTURES)
def test_map_sample_without_noise_is_the_structures_map(name: str) -> None:
    shape, opts = SCORES[name]
    logits = torch.rand(shape, generator=_gen(0), dtype=torch.float64)
    expected = structure(name).map(logits, **opts)
    assert torch.equal(map_sample(name, logits, noise=False, **opts), expected)
    assert torch.equal(map_sample(structure(name), logits, noise=False, **opts), expected)


@pytest.mark.parametrize("name", [n for n in STRUCTURES if not structure(n).minimize])
def test_map_sample_perturbs_with_the_structures_noise(name: str) -> None:
    shape, opts = SCORES[name]
    s = structure(name)
    logits = torch.randn(shape, generator=_gen(2), dtype=torch.float64)
    z = map_sample(name, logits, generator=torch.Generator().manual_seed(3), **opts)
    noise = s.gumbel(logits, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z, s.map(logits + noise, **opts))


def test_map_sample_refuses_noise_on_costs() -> None:
    costs = torch.rand(4, 5, generator=_gen(0))
    with pytest.raises(ValueError, match="noise=False"):
        map_sample("grid_path", costs)


def test_map_sample_unknown_structure() -> None:
    with pytest.raises(ValueError, match="hypergraph"):
        map_sample("hypergraph", torch.zeros(3, 4))


def test_grid_path_has_no_layer_but_a_hint() -> None:
    with pytest.raises(
        ValueError, match=r"structgrad\.estimators\.imle\('grid_path', minimize=True\)"
    ):
        latent("grid_path", "imle")


@pytest.mark.parametrize("method", [*SST, *SOLVER, *SCORE])
def test_missing_k_names_it(method: str) -> None:
    with pytest.raises(ValueError, match=r"k_subset.*missing required options \['k'\]"):
        latent("k_subset", method)


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("spanning_tree", "sst"),
        ("matching", "st-sst"),
        ("categorical", "gumbel-softmax"),
        ("k_subset", "imle"),
        ("arborescence", "perturbed"),
        ("k_subset", "reinforce"),
        ("binary_tree", "relax"),
        ("edges", "indep"),
    ],
)
def test_unknown_option_names_it(name: str, method: str) -> None:
    opts = {"k": 2} if name == "k_subset" else {}
    with pytest.raises(ValueError, match="no_such_option"):
        latent(name, method, **opts, no_such_option=1)


def test_sst_options_are_the_structures() -> None:
    """SST takes the Structure's options and its relaxation's options, nothing else."""
    for name in ("spanning_tree", "k_subset", "arborescence", "matching"):
        s = structure(name)
        opts = {"k": 2} if "k" in s.required else {}
        with pytest.raises(ValueError, match=r"unknown option.*no_such_option") as info:
            latent(s, "sst", **opts, no_such_option=1)
        for option in ("tau", *s.option_names, *s.relax_option_names):
            assert option in str(info.value).split("it takes ")[1].split(", ")


def test_sst_with_lengths_keeps_them_for_hard_samples() -> None:
    lengths = torch.tensor([3, 5])
    layer = latent("spanning_tree", "st-sst", lengths=lengths)
    assert torch.equal(layer.structure_options["lengths"], lengths)
    theta = torch.randn(2, 5, 5, generator=_gen(4))
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    u = theta + layer.structure.gumbel(theta, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, solvers.max_spanning_tree(u, lengths=lengths))
    hard = layer.sample_hard(theta, noise=False)
    assert torch.equal(hard, solvers.max_spanning_tree(theta, lengths=lengths))


def test_map_sample_of_edges_names_unknown_options() -> None:
    logits = torch.randn(2, 4, 4)
    assert map_sample("edges", logits, symmetric=True).shape == (2, 4, 4)
    for bad in ({"k": 3}, {"lengths": torch.tensor([4, 3])}, {"bogus": 1}):
        with pytest.raises(OptionError, match=r"edges: unknown options .*accepted: categorical"):
            map_sample("edges", logits, **bad)
