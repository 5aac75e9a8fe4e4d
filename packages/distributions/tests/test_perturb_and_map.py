"""PerturbAndMAP: log_prob off the support, -inf logits that leave no k-subset, expand."""

import itertools
import math

import pytest
import torch
from torch.distributions import Independent

import structgrad.solvers as solvers
from structgrad.distributions import KSubset, PerturbAndMAP, PlackettLuce, checks, structure

#: Every 0/1 vector of 5 items, float64 ``[32, 5]``.
ALL_MASKS = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
THETA = torch.tensor([0.3, -1.0, 0.8, 0.1, 1.5], dtype=torch.float64)
FORBIDDEN = torch.tensor([0.3, -math.inf, 0.8, -math.inf, 1.5], dtype=torch.float64)


def _laws() -> list[tuple[torch.Tensor, str, dict[str, int]]]:
    cases: list[tuple[torch.Tensor, str, dict[str, int]]] = []
    for theta in (THETA, FORBIDDEN):
        cases.append((theta, "categorical", {}))
        finite = int(torch.isfinite(theta).sum())
        cases += [(theta, "k_subset", {"k": k}) for k in range(finite + 1)]
    return cases


@pytest.mark.parametrize(("theta", "name", "options"), _laws())
@pytest.mark.parametrize("validate", [False, True])
def test_log_prob_sums_to_one_over_all_binary_vectors(
    theta: torch.Tensor, name: str, options: dict[str, int], validate: bool
) -> None:
    d = PerturbAndMAP(name, theta, validate_args=validate, **options)
    log_p = d.log_prob(ALL_MASKS)
    torch.testing.assert_close(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    k = options.get("k", 1)
    off = ALL_MASKS.sum(-1) != k  # not one-hot / not exactly k ones
    assert bool(torch.isneginf(log_p[off]).all())
    # The same support as the Gibbs law's: -inf exactly where KSubset's log_prob is.
    torch.testing.assert_close(
        torch.isneginf(log_p), torch.isneginf(KSubset(theta, k).log_prob(ALL_MASKS))
    )


def test_log_prob_off_the_support_is_minus_inf_batched_and_differentiable() -> None:
    theta = THETA.expand(2, 5).clone().requires_grad_(True)
    values = torch.tensor(
        [[0.0, 0, 0, 0, 0], [1, 0, 1, 0, 0], [0, 0, 1, 0, 0]], dtype=torch.float64
    )
    cat = PerturbAndMAP("categorical", theta).log_prob(values[:, None])  # [3, 2]
    assert bool(torch.isneginf(cat[:2]).all()) and bool(torch.isfinite(cat[2]).all())
    ks = PerturbAndMAP("k_subset", theta, k=2).log_prob(values[:, None])
    assert bool(torch.isneginf(ks[[0, 2]]).all()) and bool(torch.isfinite(ks[1]).all())
    finite = [lp.masked_fill(torch.isneginf(lp), 0.0).sum() for lp in (cat, ks)]
    (grad,) = torch.autograd.grad(finite[0] + finite[1], theta)  # the masked ones give no NaN
    assert bool(torch.isfinite(grad).all())


@pytest.mark.parametrize(("name", "options"), [("categorical", {}), ("k_subset", {"k": 2})])
def test_validate_args_rejects_values_outside_the_support_as_the_gibbs_laws_do(
    name: str, options: dict[str, int]
) -> None:
    d = PerturbAndMAP(name, THETA, validate_args=True, **options)
    with pytest.raises(ValueError, match="support"):  # torch's message, as KSubset's
        d.log_prob(torch.full((5,), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="support"):
        KSubset(THETA, 1, validate_args=True).log_prob(torch.full((5,), 0.5, dtype=torch.float64))
    assert structure("categorical").contains(THETA, ALL_MASKS).sum() == 5


@pytest.mark.parametrize(
    ("theta", "k"),
    [
        ([0.0, -math.inf, 1.0, 2.0], 4),
        ([0.0, -math.inf, -math.inf, 2.0], 3),
        ([[0.0, 1.0, 2.0, 3.0], [0.0, -math.inf, -math.inf, 2.0]], 3),  # one short row
    ],
)
def test_k_subset_without_room_raises_like_ksubset(theta: list[float], k: int) -> None:
    # Every k-subset takes a -inf item: the structure's checks refuse the logits
    # (the laws at construction, as their other argument checks).
    logits = torch.tensor(theta)
    message = "the -inf \\(forbidden\\) entries leave no k_subset with positive probability"
    with pytest.raises(ValueError, match=message):
        PerturbAndMAP("k_subset", logits, k=k)
    with pytest.raises(ValueError, match=message):
        KSubset(logits, k)
    with pytest.raises(ValueError, match=message):
        structure("k_subset").map(logits, k=k)
    assert solvers.top_k(logits, k).shape == logits.shape  # the solver alone still answers


def test_k_subset_room_is_a_value_check() -> None:
    logits = torch.tensor([0.0, -math.inf, -math.inf, 2.0])
    exact = PerturbAndMAP("k_subset", logits, k=2)  # exactly k finite items: always that set
    assert exact.sample((20,)).eq(torch.tensor([1.0, 0, 0, 1])).all()
    assert float(exact.log_prob(torch.tensor([1.0, 0, 0, 1]))) == pytest.approx(0.0, abs=1e-6)
    checks.set_validation(False)  # off (as while torch.compile traces): not read
    try:
        assert PerturbAndMAP("k_subset", logits, k=3).sample((4,)).shape == (4, 4)
    finally:
        checks.set_validation(True)


_EXPAND = [
    ("categorical", (3, 5), {}),
    ("k_subset", (3, 5), {"k": 2}),
    ("spanning_tree", (3, 5, 5), {"lengths": torch.tensor([5, 4, 2])}),
    ("arborescence", (3, 4, 4), {"root": 1, "lengths": torch.tensor([4, 2, 3])}),
    ("matching", (3, 4, 4), {}),
    ("binary_tree", (3, 6), {"lengths": torch.tensor([6, 4, 1])}),
]


@pytest.mark.parametrize(("name", "shape", "options"), _EXPAND)
def test_expand_matches_a_per_item_construction(
    name: str, shape: tuple[int, ...], options: dict[str, torch.Tensor]
) -> None:
    theta = torch.randn(shape, dtype=torch.float64)
    d = PerturbAndMAP(name, theta, tau=0.5, validate_args=True, **options)
    big = d.expand((2, 3))
    lengths = {"lengths": options["lengths"].expand(2, 3)} if "lengths" in options else {}
    ref = PerturbAndMAP(name, theta.expand(2, *shape), tau=0.5, **{**options, **lengths})
    assert type(big) is PerturbAndMAP and big.batch_shape == (2, 3)
    assert big.event_shape == d.event_shape == ref.event_shape
    assert big.tau == 0.5 and big._validate_args and big.structure is d.structure
    assert {k: v for k, v in big.options.items() if k != "lengths"} == {
        k: v for k, v in ref.options.items() if k != "lengths"
    }
    torch.testing.assert_close(big.mode, ref.mode)
    torch.testing.assert_close(big.mode, d.mode.expand(2, *d.mode.shape))
    x = big.sample((4,), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x, ref.sample((4,), generator=torch.Generator().manual_seed(1)))
    if big.has_rsample:
        r = big.rsample((2,), generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(r, ref.rsample((2,), generator=torch.Generator().manual_seed(2)))
    if name in ("categorical", "k_subset"):
        torch.testing.assert_close(big.log_prob(x), ref.log_prob(x))
        torch.testing.assert_close(big.log_prob(x), d.log_prob(x))  # broadcasts over [2, 3]
        assert Independent(big, 1).log_prob(x).shape == (4, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: PlackettLuce(torch.randn(3), validate_args=v),
        lambda v: PerturbAndMAP("categorical", torch.randn(3), validate_args=v),
        lambda v: PerturbAndMAP("k_subset", torch.randn(3), k=1, validate_args=v),
    ],
)
@pytest.mark.parametrize("validate", [False, True])
def test_log_prob_of_the_wrong_event_shape_names_it(make, validate: bool) -> None:  # type: ignore[no-untyped-def]
    d = make(validate)
    value = torch.tensor([1, 0]) if isinstance(d, PlackettLuce) else torch.tensor([1.0, 0.0])
    with pytest.raises(
        ValueError, match=r"value must end in the event shape \(3,\), got shape \(2,\)"
    ):
        d.log_prob(value)
    with pytest.raises(TypeError, match=r"value expects a torch\.Tensor, got list"):
        d.log_prob([1, 0, 0])


def test_log_prob_of_bool_and_integer_values() -> None:
    theta = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    x = KSubset(theta, 2).sample((4,), generator=torch.Generator().manual_seed(1))
    law = PerturbAndMAP("k_subset", theta, k=2)
    want = law.log_prob(x)
    for kind in (torch.bool, torch.long):
        torch.testing.assert_close(law.log_prob(x.to(kind)), want)  # was: topk refused bool


def test_gibbs_only_attributes_say_why_not() -> None:
    # They were AttributeErrors, where mean and entropy explain themselves.
    law = PerturbAndMAP("k_subset", torch.randn(4), k=2)
    with pytest.raises(NotImplementedError, match="no log-partition: its law is not"):
        _ = law.log_partition
    with pytest.raises(NotImplementedError, match="no closed-form mean: estimate it"):
        _ = law.marginals
