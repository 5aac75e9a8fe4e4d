import math

import numpy as np
import pytest
import torch

from structgrad.distributions import k_subset_log_partition, k_subset_marginals
from structgrad.solvers import enumerate_k_subsets
from structgrad.testing.exact import expfamily_marginals as brute_marginals


@pytest.mark.parametrize(("n", "k"), [(1, 1), (2, 1), (5, 2), (6, 3), (8, 1), (8, 4), (8, 7)])
def test_equals_brute_force(n: int, k: int) -> None:
    scores = torch.randn(4, n, dtype=torch.float64) * 2
    got = k_subset_marginals(scores, k)
    want = brute_marginals(scores, enumerate_k_subsets(n, k))
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    torch.testing.assert_close(got.sum(-1), torch.full((4,), float(k), dtype=torch.float64))
    log_z = torch.logsumexp(scores @ torch.from_numpy(enumerate_k_subsets(n, k)).T, -1)
    torch.testing.assert_close(k_subset_log_partition(scores, k), log_z)


def test_gradcheck() -> None:
    scores = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: k_subset_marginals(s, 3), (scores,))
    # The hand-written reverse pass of the DP, with -inf items and a second order.
    masked = torch.tensor([[0.3, -torch.inf, 1.2, -0.5, 2.0], [1.0, 0.0, -1.0, 0.5, -torch.inf]])
    masked = masked.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: k_subset_marginals(s, 2), (masked,))
    assert torch.autograd.gradcheck(lambda s: k_subset_log_partition(s, 3), (scores,))
    assert torch.autograd.gradgradcheck(lambda s: k_subset_marginals(s, 3), (scores,))


@pytest.mark.parametrize("offset", [-1e4, 1e4, 1e6])
def test_log_partition_is_shift_equivariant(offset: float) -> None:
    """log Z(θ + c) = log Z(θ) + k c, for large positive offsets too (the DP's floor)."""
    scores = torch.randn(4, 9, dtype=torch.float64)
    want = k_subset_log_partition(scores, 4) + 4 * offset
    torch.testing.assert_close(k_subset_log_partition(scores + offset, 4), want, atol=0, rtol=1e-12)
    torch.testing.assert_close(
        k_subset_marginals(scores + offset, 4), k_subset_marginals(scores, 4)
    )


@pytest.mark.parametrize(("n", "k"), [(10, 3), (45, 9), (60, 30), (100, 5), (200, 10), (1000, 999)])
@pytest.mark.parametrize("share", [0.2, 0.99, 1.5])
def test_float32_path_stays_accurate(n: int, k: int, share: float) -> None:
    """float32 input around the float32 budget, n · (k · spread + log C(n, k)) = 6000."""
    log_count = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    spread = max(share * 6000.0 / n - log_count, 1.0) / k
    gen = torch.Generator().manual_seed(n)
    scores = torch.rand(6, n, dtype=torch.float64, generator=gen)
    scores = (scores * spread / scores.amax(-1, keepdim=True)).float().double()
    want = k_subset_marginals(scores, k)
    got = k_subset_marginals(scores.float(), k)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("scores", "k"),
    [
        ([160.0, 50.0, 30.0, 20.0, 15.0, 10.0], 5),  # 6e-5 off
        ([23.25, 51.08, 32.99, 11.80, 16.59, 162.87], 5),  # a marginal of 1.00006
        ([40.0] * 3 + [0.0] * 9, 4),
        ([150.0] * 2 + [float(v) for v in range(10)], 3),
    ],
)
def test_float32_two_level_scores_stay_within_the_documented_error(
    scores: list[float], k: int
) -> None:
    """A few items far above the rest: the float32 DP's worst shape (below 1e-4)."""
    x = torch.tensor(scores, dtype=torch.float64)
    got = k_subset_marginals(x.float(), k)
    torch.testing.assert_close(got.double(), k_subset_marginals(x, k), atol=1e-4, rtol=0)


def test_tends_to_top_k() -> None:
    # Distinct scores at least 0.1 apart: at tau = 1e-3 the gaps are 100 nats.
    scores = torch.stack([torch.randperm(12) for _ in range(20)]).double() * 0.1
    soft = k_subset_marginals(scores / 1e-3, 4)
    hard = torch.zeros_like(scores).scatter_(-1, scores.topk(4).indices, 1.0)
    torch.testing.assert_close(soft, hard, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_scores_and_neg_inf(dtype: torch.dtype) -> None:
    scores = (torch.randn(6, 10, dtype=dtype) * 1e4).requires_grad_(True)
    masked = scores.masked_fill(torch.rand(6, 10) < 0.3, -torch.inf)
    masked[:, :5] = scores[:, :5]  # at least 5 finite items per row
    out = k_subset_marginals(masked, 4)
    (out * torch.randn(6, 10, dtype=dtype)).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(scores.grad).all()
    assert (out[torch.isneginf(masked)] == 0).all()
    # The DP runs in float64 for float32 input too: sums are exact to its rounding.
    tol = 1e-6 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(out.sum(-1), torch.full((6,), 4.0, dtype=dtype), atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spread", [1e10, 1e20, 1e38])
def test_ties_at_huge_spreads(dtype: torch.dtype, spread: float) -> None:
    # log e_k = -1e20 + log 3 rounded the log 3 away: tied items below the top got 1.
    got = k_subset_marginals(torch.tensor([0.0, -spread, -spread, -spread], dtype=dtype), 2)
    torch.testing.assert_close(got, torch.tensor([1.0, 1 / 3, 1 / 3, 1 / 3], dtype=dtype))
    got = k_subset_marginals(torch.tensor([spread, 0.0, 0.0, -spread], dtype=dtype), 2)
    torch.testing.assert_close(got, torch.tensor([1.0, 0.5, 0.5, 0.0], dtype=dtype))
    x = torch.tensor([[0.0, -1.0, -2.0], [0.0, -spread, -2 * spread]], dtype=torch.float64)
    ours = k_subset_marginals(x.requires_grad_(), 2)
    torch.testing.assert_close(ours[1].detach(), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    ours.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("n", "k"), [(45, 9), (100, 50), (200, 199)])
@pytest.mark.parametrize("scale", [10.0, 100.0, 1000.0])
def test_float32_matches_float64(n: int, k: int, scale: float) -> None:
    """float32 input, float32 output, float64 accuracy (SST at tau = 0.01 means scores ~100).

    A float32 DP lost up to 6e-2 here (n = 100, k = 50, scale 1000): each marginal
    is the exponential of a difference of two sums of ~k scores.
    """
    scores = torch.randn(8, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    scores = (scores * scale).float().double()  # the same values in both precisions
    want = k_subset_marginals(scores, k)
    got = k_subset_marginals(scores.float().requires_grad_(True), k)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        k_subset_log_partition(scores.float(), k).double(),
        k_subset_log_partition(scores, k),
        atol=0,
        rtol=1e-6,
    )


def test_batch_shapes_and_trivial_k() -> None:
    scores = torch.randn(2, 3, 6)
    assert k_subset_marginals(scores, 2).shape == (2, 3, 6)
    assert torch.equal(k_subset_marginals(scores, 0), torch.zeros(2, 3, 6))
    assert torch.equal(k_subset_marginals(scores, 6), torch.ones(2, 3, 6))


def test_k_zero_with_neg_inf() -> None:
    """k = 0 is the empty set also when some items are forbidden (was NaN there)."""
    scores = torch.tensor([0.3, -torch.inf, 1.0], requires_grad=True)
    out = k_subset_marginals(scores, 0)
    assert torch.equal(out, torch.zeros(3))
    out.sum().backward()
    assert torch.equal(scores.grad, torch.zeros(3))


@pytest.mark.parametrize("k", [np.int64(2), torch.tensor(2), np.int32(2)])
def test_integer_like_k(k: object) -> None:
    scores = torch.randn(5, dtype=torch.float64)
    want = k_subset_marginals(scores, 2)
    torch.testing.assert_close(k_subset_marginals(scores, k), want)  # type: ignore[arg-type]
    torch.testing.assert_close(k_subset_log_partition(scores, k), k_subset_log_partition(scores, 2))  # type: ignore[arg-type]


def test_memory_is_linear_in_n_times_k() -> None:
    scores = torch.randn(2, 300, dtype=torch.float64)
    out = k_subset_marginals(scores, 30)
    assert math.isclose(out.sum().item(), 60.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("scores", "k", "match"),
    [
        (torch.zeros(4), 5, r"k must lie in \[0, 4\]"),
        (torch.zeros(4), -1, r"k must lie in \[0, 4\]"),
        (torch.zeros(4), 2.0, "k must be"),
        (torch.zeros(4), True, "k must be"),
        (torch.zeros(4), torch.tensor(2.0), "k must be"),
        (torch.tensor([0.0, -torch.inf, -torch.inf]), 2, "fewer than k"),
        (torch.tensor([0.0, torch.nan]), 1, "NaN"),
        (torch.tensor(0.0), 1, "shape"),
    ],
)
def test_bad_input(scores: torch.Tensor, k: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        k_subset_marginals(scores, k)  # type: ignore[arg-type]


def test_float32_budget_decides_the_working_dtype() -> None:
    from structgrad.distributions._ksubset_marginals import _work

    gen = torch.Generator().manual_seed(0)
    gaussian = torch.randn(128, 45, generator=gen)  # the benchmark's input: float32 is enough
    assert _work(gaussian, 9).dtype == torch.float32
    assert _work(gaussian * 10, 9).dtype == torch.float64  # SST at tau = 0.1
    assert _work(torch.zeros(2, 1000), 500).dtype == torch.float64  # log C(1000, 500) = 689
    assert _work(gaussian.double(), 9).dtype == torch.float64
    assert _work(gaussian.half(), 9).dtype == torch.float32
