"""Total-variation tests of the exact samplers against the enumerated laws (n = 4, 20k draws).

With N = 20 000 draws over at most 24 outcomes the expected TV distance of an
exact sampler is about 0.01; the threshold 0.025 passes an exact sampler and
fails perturb-and-MAP, whose law differs (checked below, so that these tests
can fail).
"""

import itertools
import math

import brute
import pytest
import torch

import structgrad.distributions._wilson as wilson
from structgrad.distributions import (
    Arborescence,
    KSubset,
    PerturbAndMAP,
    PlackettLuce,
    SpanningTree,
    structure,
)

N = 20_000
THRESHOLD = 0.025


def _symmetric(n: int) -> torch.Tensor:
    theta = torch.randn(n, n, dtype=torch.float64)
    return theta.triu(1) + theta.triu(1).T


def test_spanning_tree_sampler_is_exact_and_perturb_and_map_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wilson, "_conditional", None)  # Wilson's walks alone, no fallback
    theta = _symmetric(4)
    xs = brute.support("spanning_tree", 4)
    probs = brute.law(theta, xs, "spanning_tree")
    g = torch.Generator().manual_seed(1)
    exact = SpanningTree(theta).sample((N,), generator=g)
    assert brute.total_variation(exact, xs, probs) < THRESHOLD
    perturbed = PerturbAndMAP("spanning_tree", theta).sample((N,), generator=g)
    assert brute.total_variation(perturbed, xs, probs) > THRESHOLD


@pytest.mark.parametrize("root", [0, 3])
def test_arborescence_sampler_is_exact(root: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wilson, "_conditional", None)  # Wilson's walks alone, no fallback
    theta = torch.randn(2, 4, 4, dtype=torch.float64)
    xs = brute.support("arborescence", 4, root=root)
    samples = Arborescence(theta, root=root).sample(
        (N,), generator=torch.Generator().manual_seed(2)
    )
    for b in range(2):
        probs = brute.law(theta[b], xs, "arborescence")
        assert brute.total_variation(samples[:, b], xs, probs) < THRESHOLD
    perturbed = PerturbAndMAP("arborescence", theta[0], root=root).sample((N,))
    assert brute.total_variation(perturbed, xs, brute.law(theta[0], xs, "arborescence")) > THRESHOLD


def test_samplers_with_lengths_and_forbidden_edges() -> None:
    theta = _symmetric(5).expand(2, 5, 5).clone()
    theta[:, 0, 1] = theta[:, 1, 0] = -math.inf
    lengths = torch.tensor([4, 3])
    samples = SpanningTree(theta, lengths=lengths).sample((N,))
    for b, size in enumerate(lengths.tolist()):
        xs = brute.support("spanning_tree", 5, lengths=size)
        probs = brute.law(theta[b], xs, "spanning_tree")
        assert brute.total_variation(samples[:, b], xs, probs) < THRESHOLD
    arb = Arborescence(theta, root=1, lengths=lengths).sample((N,))
    xs = brute.support("arborescence", 5, lengths=4, root=1)
    assert brute.total_variation(arb[:, 0], xs, brute.law(theta[0], xs, "arborescence")) < THRESHOLD


def test_conditional_fallback_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walks past their budget are redrawn by sequential conditioning: exact as well."""
    monkeypatch.setattr(wilson, "STEPS_PER_VERTEX_PAIR", 0)  # every walk is abandoned
    theta = torch.randn(4, 4, dtype=torch.float64)
    xs = brute.support("arborescence", 4, root=0)
    samples = Arborescence(theta).sample((4000,), generator=torch.Generator().manual_seed(3))
    # 4000 draws: expected TV about 0.02.
    assert brute.total_variation(samples, xs, brute.law(theta, xs, "arborescence")) < 0.05


def test_huge_logits_sample_the_mode() -> None:
    theta = torch.randn(3, 5, 5, dtype=torch.float64) * 1e4
    for d in (SpanningTree(theta), Arborescence(theta, root=2)):
        samples = d.sample((50,))
        assert bool((samples == d.mode).all())


@pytest.mark.parametrize(("n", "k"), [(5, 2), (4, 3)])
def test_k_subset_sampler_is_exact(n: int, k: int) -> None:
    theta = torch.randn(2, n, dtype=torch.float64)
    theta[1, 0] = -math.inf
    xs = brute.support("k_subset", n, k=k)
    samples = KSubset(theta, k).sample((N,), generator=torch.Generator().manual_seed(4))
    for b in range(2):
        probs = brute.law(theta[b], xs, "k_subset")
        assert brute.total_variation(samples[:, b], xs, probs) < THRESHOLD


def test_perturb_and_map_k_subset_log_prob_is_its_law() -> None:
    """Gumbel top-k draws follow the Plackett-Luce set probability, not the Gibbs law."""
    theta = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5], dtype=torch.float64)
    xs = brute.support("k_subset", 5, k=2)
    d = PerturbAndMAP("k_subset", theta, k=2)
    probs = d.log_prob(xs).exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    samples = d.sample((N,), generator=torch.Generator().manual_seed(5))
    assert brute.total_variation(samples, xs, probs) < THRESHOLD
    assert brute.total_variation(samples, xs, brute.law(theta, xs, "k_subset")) > THRESHOLD


def test_plackett_luce_sampler_matches_log_prob() -> None:
    theta = torch.tensor([1.0, -0.5, 0.3, 0.0], dtype=torch.float64)
    d = PlackettLuce(theta)
    rankings = torch.tensor(list(itertools.permutations(range(4))))
    probs = d.log_prob(rankings).exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    samples = d.sample((N,), generator=torch.Generator().manual_seed(6))
    assert brute.total_variation(samples, rankings, probs) < THRESHOLD


def test_categorical_structure_sampler_is_exact() -> None:
    theta = torch.randn(5, dtype=torch.float64)
    xs = brute.support("k_subset", 5, k=1)
    samples = structure("categorical").sample(
        theta, (N,), generator=torch.Generator().manual_seed(7)
    )
    assert brute.total_variation(samples, xs, torch.softmax(theta, -1)) < THRESHOLD


def test_samples_are_reproducible_with_a_generator() -> None:
    theta = torch.randn(2, 5, 5, dtype=torch.float64)
    for make in (
        lambda: SpanningTree(theta),
        lambda: Arborescence(theta),
        lambda: KSubset(theta[:, 0], 2),
    ):
        a = make().sample((7,), generator=torch.Generator().manual_seed(8))
        b = make().sample((7,), generator=torch.Generator().manual_seed(8))
        assert torch.equal(a, b)
