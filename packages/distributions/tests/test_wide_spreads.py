"""The laws and the tree relaxations at wide spreads, large offsets and -inf entries.

Every oracle is an enumeration of the whole support (structgrad.testing.exact
sums in float64 log space), so the checks hold whatever the spread.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from structgrad.distributions import (
    Arborescence,
    KSubset,
    PerturbAndMAP,
    PlackettLuce,
    SpanningTree,
    arborescence_marginals,
    multi_root_arborescence_marginals,
    spanning_tree_marginals,
    structure,
)
from structgrad.solvers import enumerate_arborescences, enumerate_spanning_trees, max_spanning_tree
from structgrad.testing.exact import expfamily_marginals

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [5.0, 40.0, 300.0])
def test_default_tree_marginals_are_exact_at_any_spread(dtype: torch.dtype, scale: float) -> None:
    # SST's temperatures divide the scores: 0.1 on N(0, 1) spreads 60 nats. The
    # reference's clip (max_range=15) moved such marginals by up to 0.69.
    gen = torch.Generator().manual_seed(int(scale))
    x = torch.randn(12, 5, 5, generator=gen, dtype=torch.float64) * scale
    want_tree = expfamily_marginals(x, enumerate_spanning_trees(5), upper=True)
    got = spanning_tree_marginals(x.to(dtype))
    atol = 1e-5 if dtype == torch.float32 else 1e-9
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), want_tree, atol=atol, rtol=0)
    for root in (0, 3):
        absent = torch.eye(5, dtype=torch.bool) | (torch.arange(5) == root)
        want = expfamily_marginals(x.masked_fill(absent, -1e300), enumerate_arborescences(5, root))
        got = arborescence_marginals(x.to(dtype), root=root)
        torch.testing.assert_close(got.double(), want, atol=atol, rtol=0)


@pytest.mark.parametrize("scale", [2.0, 50.0])
def test_default_multi_root_marginals_are_exact_at_any_spread(scale: float) -> None:
    gen = torch.Generator().manual_seed(int(scale))
    x = torch.randn(8, 4, 4, generator=gen, dtype=torch.float64) * scale
    roots = torch.randn(8, 4, generator=gen, dtype=torch.float64) * scale
    big = torch.full((8, 5, 5), -1e300, dtype=torch.float64)  # vertex 0: the virtual root
    big[:, 0, 1:], big[:, 1:, 1:] = roots, x
    big = big.masked_fill(torch.eye(5, dtype=torch.bool), -1e300)
    want = expfamily_marginals(big, enumerate_arborescences(5, 0))
    edges, got_roots = multi_root_arborescence_marginals(x, roots)
    torch.testing.assert_close(edges, want[:, 1:, 1:], atol=1e-9, rtol=0)
    torch.testing.assert_close(got_roots, want[:, 0, 1:], atol=1e-9, rtol=0)


def test_an_exact_tie_across_a_wide_spread_stays_a_tie() -> None:
    theta = torch.tensor([[0.0, 30.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    for scale in (1.0, 2.0, 100.0):
        m = spanning_tree_marginals(theta * scale)
        torch.testing.assert_close(m[0, 2], m[1, 2])
        torch.testing.assert_close(m[0, 2], torch.tensor(0.5, dtype=torch.float64))
    # The reference's clip (explicit max_range) breaks it: documented behaviour.
    clipped = spanning_tree_marginals(theta * 2, max_range=15.0)
    assert float(clipped[0, 2] - clipped[1, 2]) > 0.9


def test_default_tree_marginals_wide_with_lengths_and_forbidden_edges() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, 5, generator=gen, dtype=torch.float64) * 60
    x[:, 0, 1] = -math.inf
    lengths = torch.tensor([5, 4, 3, 5, 4, 3])
    got = spanning_tree_marginals(x, lengths=lengths)
    for b, size in enumerate(lengths.tolist()):
        sub = x[b, :size, :size]
        stack = enumerate_spanning_trees(size)
        want = expfamily_marginals(sub.nan_to_num(neginf=-1e300), stack, upper=True)
        torch.testing.assert_close(got[b, :size, :size], want, atol=1e-9, rtol=0)
        assert not got[b, size:].any() and not got[b, :, size:].any()


def test_wide_arborescences_off_root_zero_with_lengths_and_forbidden_edges() -> None:
    # The elimination relabels the root to vertex 0 and works on shrinking
    # blocks: a root inside, padding after it, and forbidden edges all at once.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 6, 6, generator=gen, dtype=torch.float64) * 80
    x[:, 4, 1] = -math.inf
    x[:, 1, 3] = -math.inf
    lengths = torch.tensor([6, 5, 4, 6, 5, 4])
    got = arborescence_marginals(x, root=2, lengths=lengths)
    for b, size in enumerate(lengths.tolist()):
        absent = torch.eye(size, dtype=torch.bool) | (torch.arange(size) == 2)
        sub = x[b, :size, :size].masked_fill(absent, -math.inf).nan_to_num(neginf=-1e300)
        want = expfamily_marginals(sub, enumerate_arborescences(size, 2))
        torch.testing.assert_close(got[b, :size, :size], want, atol=1e-9, rtol=0)
        assert not got[b, size:].any() and not got[b, :, size:].any()
    y = (torch.randn(4, 4, generator=gen, dtype=torch.float64) * 40).requires_grad_()
    torch.autograd.gradgradcheck(lambda s: arborescence_marginals(s, root=3), (y,))


def test_default_tree_marginals_backward_at_wide_spread() -> None:
    # The exact path's backward: finite differences of the float64 forward.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 5, generator=gen, dtype=torch.float64) * 40
    torch.autograd.gradcheck(spanning_tree_marginals, (x.requires_grad_(),))
    y = torch.randn(5, 5, generator=gen, dtype=torch.float64) * 40
    torch.autograd.gradcheck(lambda s: arborescence_marginals(s, root=2), (y.requires_grad_(),))


def test_spanning_tree_values_must_be_symmetric_adjacencies() -> None:
    law = SpanningTree(torch.randn(3, 3, dtype=torch.float64))
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9)), dtype=torch.float64)
    every = every.view(-1, 3, 3)
    torch.testing.assert_close(
        law.log_prob(every).exp().sum(), torch.tensor(1.0, dtype=torch.float64)
    )
    path = torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float64)
    assert torch.isfinite(law.log_prob(path))
    for bad in (path + torch.eye(3), path.triu(), path.tril()):
        assert law.log_prob(bad) == -math.inf
    padded = SpanningTree(torch.zeros(4, 4, dtype=torch.float64), lengths=torch.tensor(3))
    past = torch.zeros(4, 4, dtype=torch.float64)
    past[:3, :3] = path
    assert torch.isfinite(padded.log_prob(past))
    past[3, 0] = 1.0  # an entry past the length, below the diagonal
    assert padded.log_prob(past) == -math.inf


@pytest.mark.parametrize("offset", [1e2, 1e5, 1e7])
def test_k_subset_marginals_ignore_a_common_offset_in_float32(offset: float) -> None:
    tied = KSubset(torch.full((3,), offset), 2)
    torch.testing.assert_close(tied.marginals, torch.full((3,), 2 / 3))
    theta = torch.tensor([0.5, -1.0, 2.0, 0.0])
    moved = theta + offset  # float32: what it holds, in float64 and centred
    want = KSubset(moved.double() - offset, 2).marginals.float()
    torch.testing.assert_close(KSubset(moved, 2).marginals, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("offset", [1e4, 1e5, 1e6])
def test_float32_entropy_ignores_a_common_offset(offset: float) -> None:
    cases = [
        (SpanningTree(torch.full((4, 4), offset)), math.log(16)),
        (Arborescence(torch.full((4, 4), offset)), math.log(16)),
        (KSubset(torch.full((3,), offset), 2), math.log(3)),
    ]
    for law, want in cases:
        got = law.entropy()
        assert got.dtype == torch.float32
        assert abs(float(got) - want) < 1e-6, (type(law).__name__, float(got))


def test_rsample_divides_by_tau_safely() -> None:
    # Through Structure.relax: centred, clamped quotients (no overflow to +inf).
    v = torch.tensor([1e31, 0.0, 1.0, -1e31, 2.0])
    torch.testing.assert_close(KSubset(v, 2, tau=1e-8).rsample(), torch.tensor([1.0, 0, 0, 0, 1]))
    hard = PerturbAndMAP("categorical", v, tau=1e-8).rsample()
    torch.testing.assert_close(hard, torch.tensor([1.0, 0, 0, 0, 0]))


def test_a_tensor_tau_gets_its_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(4, 4, generator=gen)
    for law in (
        lambda tau: SpanningTree(torch.randn(4, 4, generator=gen), tau=tau),
        lambda tau: KSubset(torch.randn(4, 4, generator=gen), 2, tau=tau),
        lambda tau: PerturbAndMAP("k_subset", torch.randn(4, 4, generator=gen), k=2, tau=tau),
    ):
        tau = torch.tensor(0.5, requires_grad=True)
        (g,) = torch.autograd.grad((law(tau).rsample(generator=gen) * probe).sum(), tau)
        assert torch.isfinite(g) and g != 0
    per_row = torch.tensor([[0.5], [1.0], [2.0], [4.0]])
    assert KSubset(torch.randn(4, 4), 2, tau=per_row).rsample((3,)).shape == (3, 4, 4)
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        KSubset(torch.randn(4, 4), 2, tau=torch.tensor([0.5, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="does not broadcast"):
        KSubset(torch.randn(4, 4), 2, tau=torch.ones(5))


def test_mode_and_draws_refuse_logits_that_leave_no_structure() -> None:
    cut = torch.zeros(3, 3)
    cut[0, 1] = cut[1, 0] = cut[0, 2] = cut[2, 0] = -math.inf  # vertex 0 cut off
    message = "leave no spanning_tree"
    with pytest.raises(ValueError, match=message):
        SpanningTree(cut).mode  # noqa: B018
    with pytest.raises(ValueError, match=message):
        PerturbAndMAP("spanning_tree", cut).sample()
    with pytest.raises(ValueError, match="leave no k_subset"):
        KSubset(torch.tensor([0.0, -math.inf, -math.inf]), 2).mode  # noqa: B018
    blocked = torch.tensor([[0.0, -math.inf], [0.0, -math.inf]])  # column 1 forbidden
    with pytest.raises(ValueError, match="leave no matching"):
        PerturbAndMAP("matching", blocked).sample()
    # One forbidden edge that leaves trees: the mode avoids it.
    x = torch.randn(4, 4)
    x[0, 1] = -math.inf
    assert SpanningTree(x).mode[0, 1] == 0
    with pytest.raises(ValueError, match=message):  # as every MAP through a structure
        structure("spanning_tree").map(cut)
    assert max_spanning_tree(cut).shape == (3, 3)  # the solver itself still answers


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_forbidden_entry_check_ignores_overflowing_finite_scores(dtype: torch.dtype) -> None:
    # <θ, x> of finite scores can overflow: to -inf (a finfo.min mask, read as a
    # forbidden entry) or, beside a -inf, to NaN (a forbidden entry missed).
    low = torch.finfo(dtype).min
    masked = torch.full((4, 4), low, dtype=dtype)
    masked[0, 1] = masked[1, 0] = 0.0
    tree = structure("spanning_tree").map(masked)  # nothing is -inf: answered
    assert float(tree.triu(1).sum()) == 3 and tree[0, 1] == 1
    assert structure("k_subset").map(torch.tensor([1.0, low, low], dtype=dtype), k=3).sum() == 3
    huge = torch.full((4, 4), torch.finfo(dtype).max / 2, dtype=dtype)
    huge[3, :3] = huge[:3, 3] = -math.inf  # vertex 3 cut off
    with pytest.raises(ValueError, match="leave no spanning_tree"):
        structure("spanning_tree").map(huge)


def test_draws_past_float64_resolution_are_still_trees() -> None:
    # Scores of 1e30 beside 3e38 round their sums by ~1e22 nats: the walks hit
    # their step budget and the conditional marginals were noise (some negative),
    # so draws closed cycles (a tree adjacency held a 2). Found by the fuzz table.
    x = torch.full((3, 5, 5), 1e30)
    x[1, 1, 2], x[2, 2, 3] = -1.6e16, 3e38
    for law in (SpanningTree(x), Arborescence(x, root=2)):
        for seed in range(20):
            draws = law.sample((2,), generator=torch.Generator().manual_seed(seed))
            assert bool(((draws == 0) | (draws == 1)).all())
            assert bool(law.structure.contains(x, draws, **law.options).all())


def test_rsample_checks_its_sample_shape_as_sample_does() -> None:
    for law in (KSubset(torch.randn(5), 2), PerturbAndMAP("k_subset", torch.randn(5), k=2)):
        with pytest.raises(ValueError, match="sample_shape must not be negative"):
            law.rsample((-1,))
        with pytest.raises(TypeError, match="sample_shape must be a sequence of ints"):
            law.rsample(2)  # type: ignore[arg-type]
        assert law.rsample((2, 3)).shape == (2, 3, 5)


def test_float32_kl_is_computed_in_float64() -> None:
    from torch.distributions import kl_divergence

    gen = torch.Generator().manual_seed(0)
    cases = [
        (lambda t: KSubset(t, 3), torch.randn(8, 6, generator=gen) + 1e4),
        (SpanningTree, torch.randn(8, 5, 5, generator=gen) + 1e4),
        (Arborescence, torch.randn(8, 5, 5, generator=gen) + 1e4),
    ]
    for law, theta in cases:
        moved = theta + 0.05 * torch.randn(theta.shape, generator=gen)
        got = kl_divergence(law(theta), law(moved))
        want = kl_divergence(law(theta.double()), law(moved.double()))
        assert got.dtype == torch.float32 and bool((got >= 0).all())  # it went below 0
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("weak", [-29.9, -20.0, -14.9])
def test_clusters_on_light_edges_below_the_switch(weak: float) -> None:
    # Tight pairs joined by edges ~30 nats lighter: the float64 Laplacian lost
    # 2e-4 there (the default switched to the elimination only past 30 nats).
    n = 6
    theta = torch.full((n, n), weak, dtype=torch.float64)
    for a, b in [(0, 1), (2, 3), (4, 5)]:
        theta[a, b] = theta[b, a] = 0.0
    theta += 0.05 * torch.rand(
        n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    want = expfamily_marginals(theta, enumerate_spanning_trees(n), upper=True)
    torch.testing.assert_close(spanning_tree_marginals(theta), want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("offset", [1e6, 1e8])
def test_float32_ranking_and_set_probabilities_ignore_a_large_offset(offset: float) -> None:
    # Uncentred, float32 logits at 1e6 lost 2.5 % of the mass; at 1e8 every
    # ranking got probability 1.
    base = torch.tensor([0.0, 8.0, -8.0, 16.0])
    perms = torch.tensor(list(itertools.permutations(range(4))))
    got = PlackettLuce(base + offset).log_prob(perms)
    want = PlackettLuce(base.double()).log_prob(perms)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)
    sets = torch.tensor([s for s in itertools.product([0.0, 1.0], repeat=4) if sum(s) == 2])
    law = PerturbAndMAP("k_subset", base + offset, k=2)
    torch.testing.assert_close(law.log_prob(sets).exp().sum(), torch.tensor(1.0))


def test_float32_draws_at_a_large_offset_break_ties_uniformly() -> None:
    # Uncentred, θ + G at 1e8 (float32 spacing 8) rounded the noise away, and
    # equal logits went to index 0 in 96 % of draws.
    gen = torch.Generator().manual_seed(0)
    theta = torch.full((3,), 1e8)
    draws = 3000
    firsts = [
        PlackettLuce(theta).sample((draws,), generator=gen)[:, 0],
        PerturbAndMAP("categorical", theta).sample((draws,), generator=gen).argmax(-1),
        structure("categorical").sample(theta, (draws,), generator=gen).argmax(-1),
        PerturbAndMAP("k_subset", theta, k=2).sample((draws,), generator=gen).argmin(-1),
        PerturbAndMAP("matching", theta.expand(3, 3))
        .sample((draws,), generator=gen)[:, 0]
        .argmax(-1),
    ]
    for first in firsts:
        share = torch.bincount(first, minlength=3) / draws
        assert float((share - 1 / 3).abs().max()) < 0.05, share
    relaxed = KSubset(theta, 1).rsample((draws,), generator=gen)  # τ = 1: the softmax of θ + G
    assert float((relaxed.mean(0) - 1 / 3).abs().max()) < 0.05


def test_multi_root_forest_of_one_vertex() -> None:
    # Lengths of 1 were allowed but n = 1 was refused ("needs n >= 2").
    edges, roots = multi_root_arborescence_marginals(torch.zeros(3, 1, 1), torch.randn(3, 1) * 50)
    assert torch.equal(edges, torch.zeros(3, 1, 1)) and torch.equal(roots, torch.ones(3, 1))


@pytest.mark.parametrize("offset", [1e6, 1e7])
def test_float32_gibbs_log_prob_and_k_subset_draws_ignore_a_large_offset(offset: float) -> None:
    # log_prob was score - log Z in float32: at 1e6 the probabilities summed to
    # 0.93-1.12, at 1e7 to 0.18-1.42; k-subset draws lost their digits too.
    gen = torch.Generator().manual_seed(0)
    base = torch.tensor([0.0, 2.0, -1.0, 1.0, 3.0])
    sets = torch.tensor(
        [[float(i in c) for i in range(5)] for c in itertools.combinations(range(5), 2)]
    )
    law = KSubset(base + offset, 2)
    torch.testing.assert_close(
        law.log_prob(sets), KSubset(base, 2).log_prob(sets), atol=1e-5, rtol=0
    )
    draws = law.sample((20000,), generator=gen)
    freq = (draws[:, None] == sets[None]).all(-1).double().mean(0)
    want = KSubset(base.double(), 2).log_prob(sets.double()).exp()
    assert float((freq - want).abs().max()) < 0.015
    trees = torch.from_numpy(enumerate_spanning_trees(4)).float()
    theta = torch.tensor(
        [[0.0, 2.0, -1.0, 1.0], [2.0, 0.0, 3.0, 0.0], [-1.0, 3.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]]
    )
    wide = SpanningTree(theta + offset).log_prob(trees)
    torch.testing.assert_close(wide, SpanningTree(theta).log_prob(trees), atol=1e-5, rtol=0)
    arbs = torch.from_numpy(enumerate_arborescences(4, 0)).float()
    wide = Arborescence(theta + offset).log_prob(arbs)
    torch.testing.assert_close(wide, Arborescence(theta).log_prob(arbs), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mask", [-1e8, -1e15, -1e20, -1e300])
def test_ties_far_below_the_top_keep_their_shares(mask: float) -> None:
    # Vertex 0 reached only by three tied edges at `mask`: each is in the tree
    # with probability 1/3. The elimination from a root at vertex 0 (or a hub
    # eliminated before its leaves) added log 2 to 1e20 and lost it: the
    # shares were [0.25, 0.25, 0.5], and Wilson's fallback drew from them.
    theta = torch.zeros(4, 4, dtype=torch.float64)
    theta[0, 1:] = theta[1:, 0] = mask
    third = torch.full((3,), 1 / 3, dtype=torch.float64)
    torch.testing.assert_close(spanning_tree_marginals(theta)[0, 1:], third)
    law = SpanningTree(theta)
    torch.testing.assert_close(law.marginals[0, 1:], third)
    for root in (1, 2, 3):
        torch.testing.assert_close(arborescence_marginals(theta, root=root)[1:, 0], third)
    draws = law.sample((6000,), generator=torch.Generator().manual_seed(0))
    assert bool(law.support.check(draws).all())
    freq = draws.mean(0)[0, 1:]
    assert float((freq - third).abs().max()) < 5 * math.sqrt(2 / 9 / 6000)


@pytest.mark.parametrize("hub", [0, 2, 4])
@pytest.mark.parametrize("tau", [1e-9, 1e-16, 1e-20])
def test_a_unique_star_is_the_limit_wherever_its_hub(hub: int, tau: float) -> None:
    # Four tied edges of a star over a zero background: the marginals were
    # [1.004, 1.004, 1.254, 0.738] at tau = 1e-16 with the hub at vertex 4.
    theta = torch.zeros(5, 5, dtype=torch.float64)
    theta[hub, :] = theta[:, hub] = 1.0
    theta.fill_diagonal_(0.0)
    m = spanning_tree_marginals(theta / tau)
    star = (theta > 0).to(torch.float64)
    torch.testing.assert_close(m, star, atol=1e-12, rtol=0)
    directed = arborescence_marginals(theta / tau, root=hub)
    torch.testing.assert_close(
        directed, star * (torch.arange(5) == hub)[:, None], atol=1e-12, rtol=0
    )


def test_tied_far_edges_into_a_vertex_keep_their_shares_in_arborescences() -> None:
    # Vertex 2 is reached only by -1e20 edges (and 2 -> 3 at 2): the
    # elimination without a per-column shift gave [0.082, 0.751, 0, 0.167].
    x = torch.tensor(
        [
            [0.0, 0.0, -1e20, 2.0],
            [-1.0, 0.0, -1e20, 2.0],
            [0.0, -1.0, 0.0, 2.0],
            [-1e20, 1.0, -1e20, 0.0],
        ],
        dtype=torch.float64,
    )
    same = x.clone()
    same[[0, 1, 3], 2] = 0.0  # the same law: one edge into 2 per arborescence
    want = arborescence_marginals(same, root=1)
    torch.testing.assert_close(
        want[:, 2],
        torch.tensor([0.1590, 0.5910, 0.0, 0.25], dtype=torch.float64),
        atol=1e-4,
        rtol=0,
    )
    torch.testing.assert_close(arborescence_marginals(x, root=1), want)
    torch.testing.assert_close(Arborescence(x, root=1).marginals, want)


def test_a_tied_triangle_at_1e16_keeps_its_thirds() -> None:
    # A triangle of tied 1e16 edges with a pendant edge: [0, 0.5, 0.75, 0] for 2/3 each.
    x = torch.tensor([[0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 0]], dtype=torch.float64)
    m = spanning_tree_marginals(x * 1e16)
    torch.testing.assert_close(m, spanning_tree_marginals(x * 50), atol=1e-12, rtol=0)
    torch.testing.assert_close(m[0, 1:3], torch.full((2,), 2 / 3, dtype=torch.float64))


#: Scores in quarters: exact beside an offset of 2**50 (spacing 1/4 there).
QUARTERS = torch.tensor(
    [[0.0, 0.5, -1.0, 1.0], [2.0, 0.0, 3.0, 0.25], [-1.0, 0.75, 0.0, 1.5], [1.0, 0.25, 1.5, 0.0]],
    dtype=torch.float64,
)


@pytest.mark.parametrize("offset", [2.0**50, 1e16, 1e20, 1e300])
def test_float64_laws_ignore_a_common_offset(offset: float) -> None:
    # log p, H and KL were differences of numbers of the offset's size: at 1e16
    # a uniform law over 16 trees had H = 4 > log 16, at 1e20 probability 1.
    theta = QUARTERS + QUARTERS.T  # symmetric
    if offset > 2.0**50:  # the sums would round: a tied law then
        theta = torch.zeros_like(theta)
    moved = theta + offset  # exact: spacing 1/4 at 2**50
    trees = torch.from_numpy(enumerate_spanning_trees(4)).double()
    arbs = torch.from_numpy(enumerate_arborescences(4, 0)).double()
    sets = torch.tensor(
        [[float(i in c) for i in range(4)] for c in itertools.combinations(range(4), 2)],
        dtype=torch.float64,
    )
    for law, at, support in [
        (SpanningTree, {}, trees),
        (Arborescence, {}, arbs),
        (KSubset, {"k": 2}, sets),
    ]:
        x, y = (theta[0], moved[0]) if law is KSubset else (theta, moved)
        near, far = law(x, **at), law(y, **at)
        torch.testing.assert_close(far.log_prob(support), near.log_prob(support))
        torch.testing.assert_close(far.entropy(), near.entropy())
        assert float(torch.distributions.kl_divergence(far, near)) == pytest.approx(0, abs=1e-9)
    pm = PerturbAndMAP("k_subset", moved[0], k=2).log_prob(sets)
    torch.testing.assert_close(pm, PerturbAndMAP("k_subset", theta[0], k=2).log_prob(sets))


@pytest.mark.parametrize("scale", [1e13, 1e20])
def test_laws_stay_in_range_where_rounding_is_coarse(scale: float) -> None:
    # Past float64's resolution of log Z: log p(mode) came out +131072 at 1e20,
    # H below 0, and KL(p ‖ q) negative.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, 5, generator=gen, dtype=torch.float64) * scale
    y = torch.randn(6, 5, 5, generator=gen, dtype=torch.float64) * scale
    for law in (SpanningTree(x), Arborescence(x), KSubset(x[..., 0, :], 2)):
        assert bool((law.log_prob(law.mode) <= 0).all())
        assert bool((law.entropy() >= 0).all())
    kl = torch.distributions.kl_divergence(SpanningTree(x), SpanningTree(y))
    assert bool((kl >= 0).all())


def test_the_offset_is_read_where_the_law_reads() -> None:
    # Unread entries (a root column, padding) held 0: no offset was removed and
    # at 2**50 the 16 arborescences' probabilities summed to 15, 3 trees' to 3.
    base = QUARTERS
    far = base + 2.0**50  # exact: spacing 1/4
    far[:, 0] = 0.0  # the root column: never read
    arbs = torch.from_numpy(enumerate_arborescences(4, 0)).double()
    want = Arborescence(base).log_prob(arbs)
    torch.testing.assert_close(Arborescence(far).log_prob(arbs), want)
    torch.testing.assert_close(Arborescence(far).entropy(), Arborescence(base).entropy())
    sym = base + base.T
    padded = sym + 2.0**50
    padded[3, :] = padded[:, 3] = 0.0  # outside lengths = 3
    trees = torch.zeros(3, 4, 4, dtype=torch.float64)
    trees[:, :3, :3] = torch.from_numpy(enumerate_spanning_trees(3)).double()
    got = SpanningTree(padded, lengths=3).log_prob(trees)
    torch.testing.assert_close(got, SpanningTree(sym[:3, :3]).log_prob(trees[:, :3, :3]))


def test_the_range_clamps_keep_the_gradient() -> None:
    # clamp(min=0) zeroed the KL's gradient where rounding took it below 0.
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    q = SpanningTree(theta + 1e-9 * torch.randn(4, 4, generator=gen, dtype=torch.float64))
    x = theta.clone().requires_grad_()
    torch.distributions.kl_divergence(SpanningTree(x), q).backward()
    assert x.grad is not None and bool((x.grad != 0).any())
    # log_prob and entropy of one float32 law each have their own graph.
    y = torch.randn(4, 4, generator=gen).requires_grad_()
    law = SpanningTree(y)
    law.log_prob(law.mode).backward()
    law.entropy().backward()
