"""Plackett-Luce's exact rank marginals and entropy against an enumeration of rankings."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from structgrad.distributions import PlackettLuce

INF = math.inf


def _enumerated(theta: list[float]) -> tuple[torch.Tensor, float]:
    """Rank marginals ``[t, i]`` and entropy, summing the law over all ``n!`` rankings.

    The law written out step by step: the next item ``∝ exp(θ)`` among the
    finite ones left; ``-inf`` items come last, by index (the sampler's order).
    """
    n = len(theta)
    marginals = torch.zeros(n, n, dtype=torch.float64)
    entropy = 0.0
    for ranking in itertools.permutations(range(n)):
        log_p, left = 0.0, list(ranking)
        for i in ranking:
            finite = [math.exp(theta[j]) for j in left if theta[j] > -INF]
            if theta[i] > -INF:
                log_p += theta[i] - math.log(sum(finite))
            elif finite or i != min(left):
                log_p = -INF
            left.remove(i)
        if log_p > -INF:
            entropy -= math.exp(log_p) * log_p
            for t, i in enumerate(ranking):
                marginals[t, i] += math.exp(log_p)
    return marginals, entropy


CASES = [
    [0.3, -1.2, 2.0, 0.0, 0.7],
    [0.0, -INF, 1.0, -INF, 2.0],
    [-INF, -INF, 3.0],
    [1.5],
    [4.0, 4.0, 4.0, 4.0],
    [30.0, -30.0, 0.0, 1.0],
]


@pytest.mark.parametrize("theta", CASES)
def test_marginals_and_entropy_are_those_of_the_enumerated_law(theta: list[float]) -> None:
    law = PlackettLuce(torch.tensor(theta, dtype=torch.float64))
    marginals, entropy = _enumerated(theta)
    torch.testing.assert_close(law.marginals, marginals)
    assert float(law.entropy()) == pytest.approx(entropy, abs=1e-12)
    # and the law of the sampler: empirical rank frequencies of 20k draws
    draws = law.sample((20_000,), generator=torch.Generator().manual_seed(1))  # [S, n]
    counts = torch.nn.functional.one_hot(draws, len(theta)).to(torch.float64).mean(0)
    assert float((counts - marginals).abs().max()) < 0.02


def test_batches_gradients_and_dtypes() -> None:
    theta = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    law = PlackettLuce(theta)
    assert law.marginals.shape == (2, 3, 4, 4) and law.entropy().shape == (2, 3)
    torch.testing.assert_close(law.entropy()[1, 2], PlackettLuce(theta[1, 2]).entropy())
    theta = theta.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: PlackettLuce(t).entropy(), (theta,))
    assert torch.autograd.gradcheck(lambda t: PlackettLuce(t).marginals, (theta[0, 0],))
    masked = torch.tensor([0.0, -INF, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    law = PlackettLuce(masked)
    (law.entropy() + law.marginals.square().sum()).backward()
    assert bool(torch.isfinite(masked.grad).all()) and float(masked.grad[1]) == 0.0
    # float32 at an offset of 1e7 (spacing 1): computed in float64, the offset cancels
    shifted = PlackettLuce(torch.tensor([1e7, 1e7 + 1, 1e7 + 2])).entropy()
    assert shifted.dtype == torch.float32
    assert float(shifted) == pytest.approx(float(PlackettLuce(torch.tensor([0.0, 1, 2])).entropy()))


def test_too_many_items_say_how_to_estimate() -> None:
    law = PlackettLuce(torch.randn(17))
    with pytest.raises(ValueError, match=r"n <= 16 \(got 17\).*-log_prob"):
        law.entropy()
    assert PlackettLuce(torch.randn(0, 3)).entropy().shape == (0,)


@pytest.mark.parametrize("offset", [1e12, 1e16])
def test_a_common_offset_leaves_the_law_alone(offset: float) -> None:
    # Tied logits at 1e16: every ranking had log-probability 0 (their sum 6),
    # entropy 0.81 and first-item frequencies [0.59, 0.24, 0.17].
    base = torch.tensor([0.0, 4.0, -2.0, 0.0], dtype=torch.float64)  # exact beside 1e16
    near, far = PlackettLuce(base), PlackettLuce(base + offset)
    perms = torch.tensor(list(itertools.permutations(range(4))))
    torch.testing.assert_close(far.log_prob(perms), near.log_prob(perms))
    torch.testing.assert_close(far.entropy(), near.entropy())
    torch.testing.assert_close(far.marginals, near.marginals)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(
        far.sample((50,), generator=g), near.sample((50,), generator=g.manual_seed(0))
    )


def test_what_is_not_a_ranking_has_probability_zero_without_validation() -> None:
    # A repeated or out-of-range index got a finite log-probability (the 256
    # index vectors of n = 4 summed to 10.7) or gather's index error.
    law = PlackettLuce(
        torch.tensor([3.0, 0.0, -1.0, -2.0], dtype=torch.float64), validate_args=False
    )
    every = torch.tensor(list(itertools.product(range(4), repeat=4)))
    assert law.log_prob(every).exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    for bad in ([0, 0, 0, 0], [0, 1, 2, 7], [-1, 1, 2, 3]):
        assert law.log_prob(torch.tensor(bad)).item() == -INF
    assert law.log_prob(torch.tensor([0.9, 1.0, 2.0, 3.0])).item() == -INF  # (not truncated)
    with pytest.raises(ValueError, match="value must hold rankings"):
        PlackettLuce(torch.zeros(4), validate_args=True).log_prob(torch.tensor([0, 0, 1, 2]))
