"""The option vocabulary and the latent-layer contract's defaults."""

from __future__ import annotations

import re

import pytest
import torch

from structgrad.distributions import (
    Arborescence,
    KSubset,
    LatentLayer,
    PerturbAndMAP,
    SpanningTree,
    structure,
)
from structgrad.distributions.checks import RENAMED, OptionError, check_options


def test_check_options_accepts_known_names() -> None:
    check_options("f", {"tau": 1.0, "k": 2}, ("tau", "k", "root"))
    check_options("f", [], ())


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_old_names_say_the_new_one(old: str, new: str) -> None:
    # A ValueError, and a TypeError as Python's unexpected keyword is.
    with pytest.raises(OptionError, match=f"^f: option '{old}' is now called '{new}'$"):
        check_options("f", {old: 1.0}, ("tau", "tau_target"))


_LAWS = {
    "KSubset": lambda **o: KSubset(torch.randn(5), 2, **o),
    "SpanningTree": lambda **o: SpanningTree(torch.randn(4, 4), **o),
    "Arborescence": lambda **o: Arborescence(torch.randn(4, 4), **o),
    "PerturbAndMAP('k_subset')": lambda **o: PerturbAndMAP("k_subset", torch.randn(5), k=2, **o),
    "PerturbAndMAP('matching')": lambda **o: PerturbAndMAP("matching", torch.randn(4, 4), **o),
}


@pytest.mark.parametrize("law", sorted(_LAWS))
@pytest.mark.parametrize("old", ["temperature", "sigma"])
def test_the_laws_name_tau_for_an_old_option_name(law: str, old: str) -> None:
    # A plain TypeError (KSubset) or the structure's options alone (PerturbAndMAP
    # takes tau too) would not send the caller to 'tau'.
    with pytest.raises(
        OptionError, match=f"^{re.escape(law)}: option '{old}' is now called 'tau'$"
    ):
        _LAWS[law](**{old: 0.5})


@pytest.mark.parametrize("law", sorted(_LAWS))
def test_the_laws_list_what_they_take_for_an_unknown_option(law: str) -> None:
    with pytest.raises(ValueError, match=r"unknown option\(s\) bogus; it takes .*tau"):
        _LAWS[law](bogus=1)
    assert _LAWS[law](tau=0.5).tau == 0.5


def test_an_old_name_that_is_accepted_is_not_renamed() -> None:
    check_options("f", {"temperature": 1.0}, ("temperature",))


def test_unknown_names_list_the_accepted_ones_sorted() -> None:
    with pytest.raises(ValueError, match=r"^f: unknown option\(s\) a, z; it takes k, tau$"):
        check_options("f", {"z": 1, "a": 2, "k": 3}, ("tau", "k"))


def test_latent_layer_defaults() -> None:
    layer = LatentLayer(structure("k_subset"), {"k": 2})
    loss = torch.randn(3)
    assert layer.pathwise and layer.attach(loss) is loss
    with pytest.raises(ValueError, match="takes no baseline"):
        layer.attach(loss, baseline=torch.zeros(3))
    with pytest.raises(NotImplementedError):
        layer(torch.randn(3, 5))
    theta = torch.randn(3, 5)
    hard = layer.sample_hard(theta, noise=False)
    assert torch.equal(hard, structure("k_subset").map(theta, k=2))
    noisy = layer.sample_hard(theta, generator=torch.Generator().manual_seed(0))
    assert torch.all(noisy.sum(-1) == 2) and not noisy.requires_grad
    with pytest.raises(ValueError, match="no structure"):
        LatentLayer().sample_hard(theta)


def test_map_sample_refuses_noise_on_costs() -> None:
    costs = torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="noise=False"):
        structure("grid_path").map_sample(costs)
    path = structure("grid_path").map_sample(costs, noise=False)
    assert path.shape == costs.shape and path[:, 0, 0].eq(1).all()


def test_an_old_name_for_an_option_the_owner_lacks_says_so() -> None:
    # The rename hint alone would send the caller to a 'tau' that is refused too.
    with pytest.raises(ValueError, match=r"^g: option 'temperature' \(now called 'tau'\) is not"):
        check_options("g", {"temperature": 1.0}, ("samples", "baseline"))
