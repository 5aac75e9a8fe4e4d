import math

import pytest
import torch

import structgrad.solvers as solvers
from structgrad.relaxations import (
    binary_concrete,
    gumbel_sinkhorn,
    gumbel_softmax,
    independent_edges,
    relaxed_top_k,
    sinkhorn,
    sst,
)


def test_sinkhorn_is_doubly_stochastic_and_tends_to_the_assignment() -> None:
    scores = torch.randn(5, 6, 6, dtype=torch.float64)
    s = sinkhorn(scores, n_iters=100)
    torch.testing.assert_close(s.sum(-1), torch.ones(5, 6).double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(s.sum(-2), torch.ones(5, 6).double())
    spread = torch.randn(5, 6, 6, dtype=torch.float64) * 10
    cold = sinkhorn(spread, n_iters=2000, tau=0.05)
    assert (cold - solvers.linear_assignment(spread)).abs().mean() < 0.01


def test_sinkhorn_gradcheck_and_neg_inf() -> None:
    scores = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sinkhorn(x, n_iters=5, tau=0.7), (scores,))
    masked = scores.detach().clone()
    masked[:, 0, 1] = -torch.inf
    out = sinkhorn(masked * 1e4, tau=1e-3)
    assert torch.isfinite(out).all() and (out[:, 0, 1] == 0).all()


def test_anneal_reaches_the_fixed_point_that_plain_rounds_approach() -> None:
    scores = torch.randn(6, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    scores = scores * 2
    # tau above the spread: no stage runs, identical to plain rounds.
    torch.testing.assert_close(
        sinkhorn(scores, tau=100.0, anneal=True), sinkhorn(scores, tau=100.0), rtol=0, atol=0
    )
    # Same fixed point at tau = 0.5, approached faster with the stages first.
    limit = sinkhorn(scores, tau=0.5, n_iters=3000)
    torch.testing.assert_close(limit.sum(-1), torch.ones(6, 5, dtype=torch.float64))
    torch.testing.assert_close(
        sinkhorn(scores, tau=0.5, n_iters=3000, anneal=True), limit, atol=1e-12, rtol=0
    )
    plain = (sinkhorn(scores, tau=0.5) - limit).abs().max()
    annealed = (sinkhorn(scores, tau=0.5, anneal=True) - limit).abs().max()
    assert annealed < plain / 2, (annealed, plain)
    # At tau = 1e-3 plain rounds stall far from it; annealed ones reach the assignment.
    want = solvers.linear_assignment(scores)
    cold = sinkhorn(scores, tau=1e-3, anneal=True)
    assert (cold - want).abs().max() < 1e-6
    assert (sinkhorn(scores, tau=1e-3) - want).abs().max() > 0.1


def test_anneal_gradcheck_and_temperatures() -> None:
    scores = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: sinkhorn(x, n_iters=3, tau=0.2, anneal=True), (scores,)
    )
    # One temperature per matrix works (and equals the scalar case per item).
    tau = torch.tensor([0.5, 0.01], dtype=torch.float64).view(2, 1, 1)
    out = sinkhorn(scores.detach(), tau=tau, anneal=True)
    torch.testing.assert_close(out[1], sinkhorn(scores.detach()[1], tau=0.01, anneal=True))
    # The max shift before the division is exact for one temperature per matrix only.
    for anneal in (True, False):
        with pytest.raises(ValueError, match="varies within an instance"):
            sinkhorn(
                scores.detach(), tau=torch.full((4, 4), 0.5, dtype=torch.float64), anneal=anneal
            )


def test_annealed_sinkhorn_of_a_matrix_ignores_its_batch_mates() -> None:
    # One stage count for the whole batch (its widest spread / τ) gave the
    # narrow matrices extra rounds at τ: beside a wide mate they moved by up
    # to 5e-3 at τ = 0.1. Each matrix now masks the stages past its own count.
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        a = torch.randn(5, 5, dtype=torch.float64, generator=gen)
        mate = 100 * torch.randn(5, 5, dtype=torch.float64, generator=gen)
        alone = sinkhorn(a, tau=0.1, anneal=True)
        batched = sinkhorn(torch.stack([a, mate]), tau=0.1, anneal=True)
        torch.testing.assert_close(batched[0], alone, atol=1e-15, rtol=0)
        torch.testing.assert_close(batched[1], sinkhorn(mate, tau=0.1, anneal=True))
    # Traced (16 stages unrolled, the surplus masked per matrix): the same.
    traced = torch.compile(
        lambda x: sinkhorn(x, tau=0.1, anneal=True), backend="aot_eager", fullgraph=True
    )
    torch.testing.assert_close(traced(torch.stack([a, mate]))[0], alone, atol=1e-12, rtol=0)


def test_gumbel_sinkhorn_hard_is_a_permutation() -> None:
    scores = torch.randn(3, 5, 5, requires_grad=True)
    out = gumbel_sinkhorn(scores, 0.5, hard=True, generator=torch.Generator().manual_seed(0))
    assert set(out.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(out.detach().sum(-1), torch.ones(3, 5))
    out.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_relaxed_top_k() -> None:
    scores = torch.randn(6, 10, dtype=torch.float64, requires_grad=True)
    out = relaxed_top_k(scores, 3, 0.5, noise=False)
    assert (out >= 0).all() and (out.sum(-1) <= 3 + 1e-9).all() and (out.sum(-1) > 2.5).all()
    cold = relaxed_top_k(scores, 3, 1e-3, noise=False)
    torch.testing.assert_close(cold, solvers.top_k(scores.detach(), 3), atol=1e-4, rtol=0)
    assert torch.autograd.gradcheck(lambda x: relaxed_top_k(x, 3, 0.7, noise=False), (scores,))
    noisy = relaxed_top_k(scores * 1e4, 3, 1e-3, generator=torch.Generator().manual_seed(1))
    noisy.sum().backward()
    assert torch.isfinite(noisy).all() and torch.isfinite(scores.grad).all()


def test_relaxed_top_k_wide_spreads_pick_each_item_once() -> None:
    # A leader by more than 87 (float32) / 708 (float64) nats was picked twice:
    # log(1 - a) was clamped at log(tiny).
    for scores, tau in (([100.0, 0.0, -5.0], 1e-3), ([1e4, 0.0, -1e4], 1e-8)):
        for dtype in (torch.float32, torch.float64):
            x = torch.tensor(scores, dtype=dtype)
            torch.testing.assert_close(relaxed_top_k(x, 2, tau, noise=False), solvers.top_k(x, 2))
    # Exact rounds at tau = 1: the leader's exclusion leaves r = log1p(e^-5) for it.
    got = relaxed_top_k(torch.tensor([800.0, 0.0, -5.0], dtype=torch.float64), 2, 1.0, noise=False)
    second = torch.softmax(torch.tensor([math.log1p(math.exp(-5.0)), 0.0, -5.0]).double(), -1)
    torch.testing.assert_close(got, second + torch.tensor([1.0, 0.0, 0.0]).double())
    x = torch.tensor([3.0, 1.0, -math.inf, 0.5], requires_grad=True)
    out = relaxed_top_k(x, 3, 1e-3, noise=False)
    (out * torch.arange(4.0)).sum().backward()
    assert torch.equal(out.detach(), torch.tensor([1.0, 1.0, 0.0, 1.0]))
    assert torch.isfinite(x.grad).all()


def test_relaxed_top_k_of_nothing_keeps_the_graph() -> None:
    # k = 0 returned untracked zeros: backward failed ("does not require grad").
    x = torch.tensor([1.0, -math.inf, -2.0], requires_grad=True)
    out = relaxed_top_k(x, 0, 1.0)
    assert torch.equal(out, torch.zeros(3)) and not torch.signbit(out).any()
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relaxed_top_k_resolves_small_scores_beside_huge_ones(dtype: torch.dtype) -> None:
    # Shifted once by the leader, 0 and 1 rounded together beside 1e8 (float32)
    # or 1e16 (float64), and 1e36 / 1e-3 overflowed after the first exclusion (NaN).
    big = 1e8 if dtype == torch.float32 else 1e16
    for x in ([0.0, big, -big, 1.0], [0.0, 1e36, 1.0, -1e36]):
        scores = torch.tensor(x, dtype=dtype, requires_grad=True)
        out = relaxed_top_k(scores, 2, 1e-3, noise=False)
        torch.testing.assert_close(out.detach(), solvers.top_k(scores.detach(), 2))
        out[0].backward()
        assert torch.isfinite(scores.grad).all()
    # A common offset is still removed exactly: the noise keeps its digits.
    base = torch.randint(-4, 5, (2, 6)).float() * 2  # + 3e7 is exact (spacing 2)
    draws = [
        relaxed_top_k(b, 3, 0.5, generator=torch.Generator().manual_seed(3))
        for b in (base, base + 3e7)
    ]
    torch.testing.assert_close(draws[0], draws[1], atol=1e-5, rtol=0)


def test_learned_tau_with_neg_inf_logits() -> None:
    """Every tau-scaled relaxation: a finite tau gradient beside -inf scores."""
    row = torch.tensor([0.5, -math.inf, 1.0, -0.3])
    square = torch.tensor([[0.0, 1.0, -math.inf], [1.0, 0.0, 2.0], [-math.inf, 2.0, 0.0]])
    calls = {
        "relaxed_top_k": lambda t: relaxed_top_k(row, 2, t),
        "binary_concrete": lambda t: binary_concrete(row, t),
        "sinkhorn": lambda t: sinkhorn(square, tau=t),
        "sinkhorn anneal": lambda t: sinkhorn(square, tau=t, anneal=True),
        "gumbel_sinkhorn": lambda t: gumbel_sinkhorn(square, t),
    }
    for name, call in calls.items():
        tau = torch.tensor(0.5, requires_grad=True)
        out = call(tau)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        assert torch.isfinite(tau.grad), name


def test_independent_edges_per_graph_tau() -> None:
    # tau shaped for the logits [B, n, n] was checked against [B, n, n, 2].
    logits = torch.randn(3, 4, 4)
    tau = torch.tensor([1.0, 0.5, 0.1]).view(3, 1, 1)
    g = torch.Generator().manual_seed(0)
    out = independent_edges(logits, tau, generator=g)
    for b in range(3):
        g = torch.Generator().manual_seed(0)
        one = independent_edges(logits, float(tau[b]), generator=g)
        torch.testing.assert_close(out[b], one[b])
    with pytest.raises(ValueError, match="does not broadcast"):
        gumbel_softmax(torch.randn(3, 4), torch.ones(2, 1, 1))


def test_a_tau_that_varies_within_an_instance_is_refused() -> None:
    # The shift-invariant relaxations centre the scores before dividing by tau:
    # exact for one tau per instance, silently wrong per entry (gumbel_softmax
    # gave [0.004, 0.26, 0.73] for softmax((l + G) / tau) = [0.10, 0.51, 0.39]).
    row = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    per_entry = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    per_row = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    square = torch.randn(2, 4, 4, dtype=torch.float64)
    calls = [
        lambda t: gumbel_softmax(row, t),
        lambda t: gumbel_softmax(row.T, t.T, dim=0).T,
        lambda t: relaxed_top_k(row, 2, t),
        lambda t: sst("categorical", row, t),
        lambda t: sst("k_subset", row, t, k=2),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="varies within an instance"):
            call(per_entry[None])
        assert call(per_row).shape == row.shape
    for structure in ("spanning_tree", "arborescence", "matching"):
        with pytest.raises(ValueError, match="varies within an instance"):
            sst(structure, square, torch.rand(2, 4, 1, dtype=torch.float64) + 0.5)
        assert sst(structure, square, torch.tensor([0.5, 2.0]).view(2, 1, 1)).shape == square.shape
    # binary edges are independent choices: a tau per edge is one per instance
    edges = independent_edges(square, torch.rand(2, 4, 4, dtype=torch.float64) + 0.5)
    assert edges.shape == square.shape


def test_independent_edges_forms() -> None:
    logits = torch.randn(4, 5, 5)
    gen = torch.Generator().manual_seed(0)
    sample = independent_edges(logits, 0.5, generator=gen)
    assert sample.shape == (4, 5, 5) and (torch.diagonal(sample, dim1=-2, dim2=-1) == 0).all()
    sym = independent_edges(logits, 0.5, symmetric=True, hard=True, generator=gen)
    assert torch.equal(sym, sym.transpose(-1, -2))
    typed = independent_edges(torch.randn(4, 5, 5, 2), 0.5, categorical=True, generator=gen)
    off = ~torch.eye(5, dtype=torch.bool)
    torch.testing.assert_close(typed.sum(-1)[:, off], torch.ones(4, 20))


def test_independent_edges_law() -> None:
    logits = torch.full((20000, 3, 3), 1.0)
    hard = independent_edges(logits, 0.5, hard=True, generator=torch.Generator().manual_seed(2))
    assert hard[:, 0, 1].mean().item() == pytest.approx(
        torch.sigmoid(torch.tensor(1.0)).item(), abs=0.015
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sinkhorn(torch.zeros(3, 4)), "shape"),
        (lambda: sinkhorn(torch.zeros(3, 3), n_iters=0), "n_iters"),
        (lambda: sinkhorn(torch.full((2, 2), -torch.inf)), "row or column"),
        # Two rows that may only use column 0: no permutation, no doubly-stochastic limit.
        (
            lambda: sinkhorn(torch.tensor([[0.0, -torch.inf], [0.0, -torch.inf], [0.0, 0.0]])),
            "shape",
        ),
        (
            lambda: sinkhorn(
                torch.tensor(
                    [[0.0, -torch.inf, -torch.inf], [0.0, -torch.inf, -torch.inf], [0.0] * 3]
                )
            ),
            "leave no permutation",
        ),
        (
            lambda: gumbel_sinkhorn(
                torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[0.0, -torch.inf], [0.0, -torch.inf]]]),
                1.0,
            ),
            "row or column",
        ),
        (lambda: relaxed_top_k(torch.zeros(3), 4, 1.0), r"k must lie in \[0, 3\]"),
        (lambda: relaxed_top_k(torch.zeros(3), 1, 0.0), "tau"),
        (lambda: independent_edges(torch.zeros(3, 4), 1.0), "shape"),
        (lambda: independent_edges(torch.zeros(3, 3), 1.0, categorical=True), "categorical"),
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_annealed_sinkhorn_with_a_finite_masking_value() -> None:
    # A -1e9 stand-in for -inf drifted the column potentials by ~1e7, and the
    # float32 cast rounded away their differences: rows summed to 1.025.
    m = torch.tensor([[5.0, -5.0, 0.0], [0.0, 5.0, 3.0], [-1e9, 0.0, 1.0]])
    torch.testing.assert_close(sinkhorn(m, tau=1e-3, anneal=True), torch.eye(3))
    gen = torch.Generator().manual_seed(0)
    for tau in (1.0, 0.1, 1e-3):
        for _ in range(10):
            x = torch.randn(6, 6, generator=gen)
            y = x.clone()
            x[2, 4], y[2, 4] = -1e9, -torch.inf
            got, want = sinkhorn(x, tau=tau, anneal=True), sinkhorn(y, tau=tau, anneal=True)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    wide = torch.randn(5, 5, dtype=torch.float64, generator=gen)
    masked = wide.clone()
    wide[0, 1], masked[0, 1] = -1e30, -torch.inf
    torch.testing.assert_close(
        sinkhorn(wide, tau=0.1, anneal=True), sinkhorn(masked, tau=0.1, anneal=True)
    )
    # Many -1e9 entries: with 3 rounds per stage, 7 of these 64 matrices kept
    # rows of 0.5 and 2 (the potentials were stuck, whatever the final rounds).
    gen = torch.Generator().manual_seed(6)
    x = 3 * torch.randn(64, 6, 6, dtype=torch.float64, generator=gen)
    cut = torch.rand(64, 6, 6, generator=gen) < 0.3
    cut[:, range(6), range(6)] = False  # the identity stays allowed
    for value in (-1e9, -torch.inf):
        rows = sinkhorn(x.masked_fill(cut, value), tau=0.1, anneal=True).sum(-1)
        torch.testing.assert_close(rows, torch.ones_like(rows), atol=0.05, rtol=0)


def test_flags_must_be_booleans() -> None:
    x = torch.randn(3, 3)
    calls = [
        lambda: sinkhorn(x, anneal="yes"),
        lambda: gumbel_sinkhorn(x, 1.0, hard="x"),
        lambda: binary_concrete(x, 1.0, hard="x"),
        lambda: independent_edges(x, 1.0, symmetric="x"),
        lambda: sst("matching", x, 1.0, anneal="x"),
        lambda: sst("categorical", x, 1.0, straight_through=1),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="must be True or False"):
            call()


def test_sst_names_its_logits() -> None:
    with pytest.raises(ValueError, match="logits contains NaN"):
        sst("categorical", torch.tensor([0.0, float("nan")]), 1.0)
    with pytest.raises(ValueError, match="logits must be square"):
        sst("matching", torch.randn(3, 4), 1.0)
