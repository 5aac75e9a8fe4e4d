import math

import pytest
import torch

import structgrad.solvers as solvers
from structgrad.distributions import (
    _laplacian,
    arborescence_marginals,
    multi_root_arborescence_marginals,
    spanning_tree_marginals,
)
from structgrad.solvers import enumerate_arborescences, enumerate_spanning_trees
from structgrad.testing.exact import expfamily_marginals


@pytest.fixture(autouse=True, params=["kernel", "lapack"])
def inverse_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with both inverses of the Laplacians: the batched kernel
    of structgrad.solvers (CPU, small n) and one LAPACK call per matrix."""
    if request.param == "lapack":
        monkeypatch.setattr(_laplacian, "_KERNEL_MAX_N", 0)
    return str(request.param)


def test_small_cpu_graphs_use_the_kernel(
    inverse_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = solvers.inverse_in_place

    def counted(matrices: object) -> object:
        calls.append(1)
        return original(matrices)  # type: ignore[arg-type]

    monkeypatch.setattr(solvers, "inverse_in_place", counted)
    spanning_tree_marginals(torch.randn(3, 10, 10))
    multi_root_arborescence_marginals(torch.randn(3, 10, 10), torch.randn(3, 10))
    arborescence_marginals(torch.randn(3, 2, 10, 10), lengths=torch.tensor([4, 10]))
    assert len(calls) == (3 if inverse_path == "kernel" else 0)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_spanning_tree_equals_brute_force(n: int) -> None:
    scores = torch.randn(3, n, n, dtype=torch.float64) * 2
    got = spanning_tree_marginals(scores, max_range=math.inf)
    want = expfamily_marginals(scores, enumerate_spanning_trees(n), upper=True)
    torch.testing.assert_close(got, want, atol=1e-8, rtol=0)
    assert torch.equal(got, got.transpose(-1, -2))
    torch.testing.assert_close(got.triu(1).sum((-1, -2)), torch.full((3,), n - 1.0).double())
    assert (got.sum(-1) >= 1 - 1e-9).all()  # every vertex has an edge


@pytest.mark.parametrize(("n", "root"), [(2, 0), (3, 1), (4, 0), (5, 4)])
def test_arborescence_equals_brute_force(n: int, root: int) -> None:
    scores = torch.randn(3, n, n, dtype=torch.float64) * 2
    got = arborescence_marginals(scores, root=root, max_range=math.inf)
    want = expfamily_marginals(scores, enumerate_arborescences(n, root=root))
    torch.testing.assert_close(got, want, atol=1e-8, rtol=0)
    in_sum = got.sum(-2)
    torch.testing.assert_close(in_sum[:, root], torch.zeros(3).double())
    keep = [v for v in range(n) if v != root]
    torch.testing.assert_close(in_sum[:, keep], torch.ones(3, n - 1).double())


def test_multi_root_is_a_virtual_root_arborescence() -> None:
    n = 4
    scores = torch.randn(2, n, n, dtype=torch.float64)
    root_scores = torch.randn(2, n, dtype=torch.float64)
    edges, roots = multi_root_arborescence_marginals(scores, root_scores, max_range=math.inf)
    big = torch.full((2, n + 1, n + 1), -torch.inf, dtype=torch.float64)
    big[:, :n, :n] = scores
    big[:, n, :n] = root_scores
    want = expfamily_marginals(big, enumerate_arborescences(n + 1, root=n))
    torch.testing.assert_close(
        edges, want[:, :n, :n] * (1 - torch.eye(n)).double(), atol=1e-8, rtol=0
    )
    torch.testing.assert_close(roots, want[:, n, :n], atol=1e-8, rtol=0)
    torch.testing.assert_close(edges.sum(-2) + roots, torch.ones(2, n).double())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unread_entries_do_not_matter(dtype: torch.dtype) -> None:
    # The diagonal (and, with one root, the column of the root) is never read:
    # NaN, +inf or 1e30 there changes nothing and gets zero gradient, so
    # torch-struct's layout (root scores on the diagonal) can be passed as is.
    n = 6
    scores = torch.randn(3, n, n, dtype=dtype)
    root_scores = torch.diagonal(scores, dim1=-2, dim2=-1).clone()
    want_e, want_r = multi_root_arborescence_marginals(scores, root_scores)
    want_a = arborescence_marginals(scores, root=2)
    for junk in (torch.nan, torch.inf, -torch.inf, 1e30, -1e30):
        dirty = scores.clone()
        dirty.diagonal(dim1=-2, dim2=-1).fill_(junk)
        leaf = dirty.clone().requires_grad_(True)
        edges, roots = multi_root_arborescence_marginals(leaf, root_scores)
        torch.testing.assert_close(edges, want_e)
        torch.testing.assert_close(roots, want_r)
        assert torch.equal(torch.diagonal(edges, dim1=-2, dim2=-1), torch.zeros(3, n, dtype=dtype))
        (grad,) = torch.autograd.grad((edges * torch.randn_like(edges)).sum(), leaf)
        assert torch.equal(torch.diagonal(grad, dim1=-2, dim2=-1), torch.zeros(3, n, dtype=dtype))
        dirty[..., 2] = junk  # the edges into the root
        torch.testing.assert_close(arborescence_marginals(dirty, root=2), want_a)
        # Past a length nothing is read either (the rows, the columns, the root scores).
        lengths = torch.tensor([6, 4, 2])
        want_pe, want_pr = multi_root_arborescence_marginals(scores, root_scores, lengths=lengths)
        want_pa = arborescence_marginals(scores, root=1, lengths=lengths)
        padded, padded_roots = scores.clone(), root_scores.clone()
        for b, size in enumerate(lengths.tolist()):
            padded[b, size:, :] = padded[b, :, size:] = padded_roots[b, size:] = junk
        edges, roots = multi_root_arborescence_marginals(padded, padded_roots, lengths=lengths)
        torch.testing.assert_close(edges, want_pe)
        torch.testing.assert_close(roots, want_pr)
        assert not roots[2, 2:].any() and not edges[1, 4:].any() and not edges[1, :, 4:].any()
        padded[..., 1] = junk
        torch.testing.assert_close(arborescence_marginals(padded, root=1, lengths=lengths), want_pa)
    # ... while a NaN that is read is an error.
    scores[1, 0, 3] = torch.nan
    with pytest.raises(ValueError, match="scores contains NaN"):
        multi_root_arborescence_marginals(scores, root_scores)


def test_spanning_trees_read_the_upper_triangle_of_each_graph_only() -> None:
    n = 6
    scores = torch.randn(3, n, n, dtype=torch.float64)
    lengths = torch.tensor([6, 4, 2])
    want = spanning_tree_marginals(scores, lengths=lengths)
    for junk in (torch.nan, torch.inf, -torch.inf, 1e30):
        dirty = scores.clone()
        lower = torch.ones(n, n, dtype=torch.bool).tril()
        dirty[:, lower] = junk
        for b, size in enumerate(lengths.tolist()):
            dirty[b, size:, :] = dirty[b, :, size:] = junk
        leaf = dirty.clone().requires_grad_(True)
        out = spanning_tree_marginals(leaf, lengths=lengths)
        torch.testing.assert_close(out, want)
        (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), leaf)
        assert torch.equal(grad, grad.triu(1)) and torch.isfinite(grad).all()


def test_empty_batches() -> None:
    for dtype in (torch.float32, torch.float64):
        x = torch.zeros(0, 4, 4, dtype=dtype, requires_grad=True)
        edges, roots = multi_root_arborescence_marginals(x, torch.zeros(0, 4, dtype=dtype))
        assert edges.shape == (0, 4, 4) and roots.shape == (0, 4) and edges.dtype == dtype
        assert arborescence_marginals(x).shape == (0, 4, 4)
        assert spanning_tree_marginals(x).shape == (0, 4, 4)
        (edges.sum() + roots.sum()).backward()
        assert x.grad is not None and x.grad.shape == (0, 4, 4)


def test_gradcheck() -> None:
    s = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: spanning_tree_marginals(x), (s,))
    assert torch.autograd.gradcheck(lambda x: arborescence_marginals(x, root=2), (s,))
    assert torch.autograd.gradcheck(lambda x, y: multi_root_arborescence_marginals(x, y), (s, r))


def test_lengths_pad_graphs() -> None:
    scores = torch.randn(3, 6, 6, dtype=torch.float64)
    lengths = torch.tensor([2, 4, 6])
    got = spanning_tree_marginals(scores, lengths=lengths)
    arb = arborescence_marginals(scores, lengths=lengths)
    for b, size in enumerate(lengths.tolist()):
        alone = spanning_tree_marginals(scores[b, :size, :size])
        torch.testing.assert_close(got[b, :size, :size], alone)
        assert (got[b, size:] == 0).all() and (got[b, :, size:] == 0).all()
        torch.testing.assert_close(
            arb[b, :size, :size], arborescence_marginals(scores[b, :size, :size])
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_scores_stay_finite(dtype: torch.dtype) -> None:
    scores = (torch.randn(4, 10, 10, dtype=dtype) * 1e4).requires_grad_(True)
    for fn in (spanning_tree_marginals, arborescence_marginals):
        out = fn(scores / 1e-3 * 1e-3)
        (out * torch.randn_like(out)).sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(scores.grad).all()
        scores.grad = None


@pytest.mark.parametrize("max_range", [None, 15.0])  # exact, and the reference's clip
def test_clipping_keeps_the_maximum_spanning_tree_limit(max_range: float | None) -> None:
    # Distinct scores 0.1 apart: at tau = 1e-4 every gap is at least 1000 nats.
    scores = torch.stack([torch.randperm(49).double().view(7, 7) for _ in range(20)]) * 0.1
    mst = solvers.max_spanning_tree(scores)
    for tau in (1e-4, 1e-6, 1e-9):
        soft = spanning_tree_marginals(scores / tau, max_range=max_range)
        torch.testing.assert_close(soft, mst, atol=1e-5, rtol=0)  # non-tree edges ~ e^-15
    # Within range nothing is clipped: the default equals the exact marginals.
    mild = torch.randn(3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(
        spanning_tree_marginals(mild), spanning_tree_marginals(mild, max_range=math.inf)
    )


def test_arborescence_columns_are_shifted_exactly() -> None:
    scores = torch.randn(3, 5, 5, dtype=torch.float64)
    shifted = scores + torch.randn(3, 1, 5, dtype=torch.float64) * 100  # per-target offsets
    torch.testing.assert_close(arborescence_marginals(shifted), arborescence_marginals(scores))
    # The directed Laplacian is ill-conditioned at large spreads: check the limit
    # where gaps are 4 nats (distinct integer scores at tau = 0.25).
    distinct = torch.stack([torch.randperm(25).double().view(5, 5) for _ in range(3)])
    cold = arborescence_marginals(distinct / 0.25, max_range=math.inf)
    torch.testing.assert_close(cold, solvers.max_arborescence(distinct), atol=0.1, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_range", [None, math.inf, 50.0, 5.0])
def test_huge_per_column_offsets_change_nothing(dtype: torch.dtype, max_range: float) -> None:
    # Every in-edge of a vertex (the root edge included) moved by the same
    # offset, 1e6 apart between vertices: the law is the same, and no shift
    # common to all columns could keep every column from underflowing.
    # (max_range=5 clips: the same clip on both sides, it is per column too.)
    scores = torch.randn(4, 7, 7, dtype=torch.float64)
    root_scores = torch.randn(4, 7, dtype=torch.float64)
    offsets = (
        torch.arange(7, dtype=torch.float64) * 1e6 * torch.tensor([1.0, -1.0, 0.5, 2.0])[:, None]
    )
    moved = (scores + offsets[:, None, :]).to(dtype)
    moved_roots = (root_scores + offsets).to(dtype)
    # The oracle: the scores the (rounded) input holds, offsets taken off exactly.
    exact, exact_roots = moved.double() - offsets[:, None, :], moved_roots.double() - offsets
    want = arborescence_marginals(exact, max_range=max_range, root=3)
    want_e, want_r = multi_root_arborescence_marginals(exact, exact_roots, max_range=max_range)
    got = arborescence_marginals(moved, max_range=max_range, root=3)
    got_e, got_r = multi_root_arborescence_marginals(moved, moved_roots, max_range=max_range)
    tol = 1e-8 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got.double(), want, atol=tol, rtol=0)
    torch.testing.assert_close(got_e.double(), want_e, atol=tol, rtol=0)
    torch.testing.assert_close(got_r.double(), want_r, atol=tol, rtol=0)


def _virtual_root(scores: torch.Tensor, root_scores: torch.Tensor) -> torch.Tensor:
    """The multi-root model as an (n + 1)-vertex graph rooted at a virtual vertex 0."""
    n = scores.shape[-1]
    big = torch.full((*scores.shape[:-2], n + 1, n + 1), -math.inf, dtype=scores.dtype)
    big[..., 0, 1:] = root_scores
    big[..., 1:, 1:] = scores
    return big


def _limit_bound(
    scores: torch.Tensor, root: int, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, 1, 1]`` the stated residue n² e^{-R/depth} (R = 20) plus float64 round-off."""
    _, trace = solvers.max_arborescence(scores, root=root, lengths=lengths, return_trace=True)
    members = (
        trace.members & (torch.arange(trace.members.shape[1]) < trace.n_steps[:, None])[..., None]
    )
    nested = members & (members.sum(-1, keepdim=True) > 1)
    depth = nested.sum(1).amax(-1).clamp_min(1)  # longest chain of contracted cycles
    n = scores.shape[-1]
    return (n**2 * torch.exp(-20.0 / depth.double()) + 1e-6).view(-1, 1, 1)


@pytest.mark.parametrize("max_range", [None, 20.0])  # exact, and the clip
@pytest.mark.parametrize("n", [3, 4, 6, 9])
def test_clip_keeps_the_maximum_arborescence_limit(n: int, max_range: float | None) -> None:
    # Continuous scores: a unique MAP, and Chu-Liu/Edmonds contracts (nested)
    # cycles in most graphs (see _arborescence_clip for the residue).
    scores = torch.randn(100, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    for root in (0, n - 1):
        best = solvers.max_arborescence(scores, root=root)
        bound = _limit_bound(scores, root)
        for tau in (1e-6, 1e-9):  # every score gap of these graphs is >> R nats
            gap = (
                arborescence_marginals(scores / tau, root=root, max_range=max_range) - best
            ).abs()
            assert (gap <= bound).all()
            assert gap.amax((-2, -1)).median() < 1e-4  # most graphs: at most one level
    lengths = torch.randint(2, n + 1, (100,), generator=torch.Generator().manual_seed(1))
    gap = arborescence_marginals(
        scores / 1e-6, lengths=lengths, max_range=max_range
    ) - solvers.max_arborescence(scores, lengths=lengths)
    assert (gap.abs() <= _limit_bound(scores, 0, lengths)).all()
    root_scores = torch.randn(100, n, dtype=torch.float64)
    edges, roots = multi_root_arborescence_marginals(scores / 1e-6, root_scores / 1e-6)
    big = _virtual_root(scores, root_scores)
    best, bound = solvers.max_arborescence(big, root=0), _limit_bound(big, 0)
    assert ((edges - best[..., 1:, 1:]).abs() <= bound).all()
    assert ((roots - best[..., 0, 1:]).abs() <= bound[..., 0]).all()


def test_arborescence_clip_keeps_the_map_and_stays_accurate() -> None:
    from structgrad.distributions._arborescence_clip import dual_clip

    gen = torch.Generator().manual_seed(3)
    # Many nested contractions: MAP preserved for n up to 12, any scale.
    for n, scale in ((6, 1e3), (12, 1e6), (12, 1.0)):
        w = torch.randn(200, n, n, dtype=torch.float64, generator=gen) * scale
        w = w.masked_fill(torch.eye(n, dtype=torch.bool) | (torch.arange(n) == 0), -math.inf)
        clipped = dual_clip(w, None, 0, 20.0)
        assert torch.all(clipped >= w)  # raise-only
        assert torch.equal(
            solvers.max_arborescence(clipped, root=0), solvers.max_arborescence(w, root=0)
        )
        if scale == 1.0:  # in range: nothing moves
            spread = w.amax(-2, keepdim=True) - w.masked_fill(w.isinf(), math.inf).amin(-2, True)
            assert torch.equal(clipped[spread.expand_as(w) <= 20], w[spread.expand_as(w) <= 20])
    # The clipped Laplacian is still accurate: compare with enumeration at n = 6.
    w = torch.randn(30, 6, 6, dtype=torch.float64, generator=gen) / 1e-6
    exact = expfamily_marginals(_clipped_scores(w), enumerate_arborescences(6, 0))
    torch.testing.assert_close(arborescence_marginals(w, max_range=20.0), exact, atol=1e-5, rtol=0)


def _clipped_scores(w: torch.Tensor) -> torch.Tensor:
    from structgrad.distributions._arborescence_clip import dual_clip

    n = w.shape[-1]
    absent = torch.eye(n, dtype=torch.bool) | (torch.arange(n) == 0)
    clipped = dual_clip(w.masked_fill(absent, -math.inf), None, 0, 20.0)
    return clipped.masked_fill(absent, -1e300)  # finite stand-in for the enumerator


#: The tester's graph: two 60-nat clusters joined 47 nats below the maximum.
_WIDE = torch.tensor(
    [[0.0, 64, -27, 10], [64, 0, 17, -16], [-27, 17, 0, 61], [10, -16, 61, 0]],
    dtype=torch.float64,
)


@pytest.mark.parametrize("max_range", [40.0, 100.0, 1000.0])
def test_a_range_above_the_default_gives_the_clipped_law(max_range: float) -> None:
    # The clip leaves spreads up to 2R (trees) or chains of cycles up to R
    # (arborescences): past the default's R the Laplacian was singular
    # ("a finite max_range prevents that", with one given) or off by up to 1.
    # The clipped law is the one of the clipped scores, computed as the default is.
    from structgrad.distributions._arborescence_clip import dual_clip
    from structgrad.distributions._tree_clip import bottleneck_clip

    gen = torch.Generator().manual_seed(5)
    x = torch.cat([_WIDE[None], torch.randn(49, 4, 4, dtype=torch.float64, generator=gen) * 50])
    pair = torch.ones(4, 4, dtype=torch.bool).triu(1)
    tree_law = bottleneck_clip(
        x.masked_fill(~pair, -math.inf), pair.expand(x.shape), None, max_range
    )
    want = expfamily_marginals(tree_law, enumerate_spanning_trees(4), upper=True)
    got = spanning_tree_marginals(x, max_range=max_range)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    absent = torch.eye(4, dtype=torch.bool) | (torch.arange(4) == 0)
    arb_law = dual_clip(x.masked_fill(absent, -math.inf), None, 0, max_range)
    want = expfamily_marginals(arb_law, enumerate_arborescences(4, 0))
    torch.testing.assert_close(
        arborescence_marginals(x, max_range=max_range), want, atol=1e-10, rtol=0
    )
    roots = x[..., 0, :] - 30  # the multi-root model: a virtual root 0 over 4 vertices
    big = dual_clip(_virtual_root(x, roots), None, 0, max_range)
    want = expfamily_marginals(big, enumerate_arborescences(5, 0))
    edges, root_marginals = multi_root_arborescence_marginals(x, roots, max_range=max_range)
    torch.testing.assert_close(edges, want[..., 1:, 1:], atol=1e-10, rtol=0)
    torch.testing.assert_close(root_marginals, want[..., 0, 1:], atol=1e-10, rtol=0)
    # float32 scores take the same path (sst passes them)
    got32 = spanning_tree_marginals(x.float(), max_range=max_range)
    want32 = spanning_tree_marginals(x.float().double(), max_range=max_range)
    torch.testing.assert_close(got32, want32.float(), atol=1e-6, rtol=0)


def test_arborescence_clip_gradient() -> None:
    # Nothing raised: the same values and gradients as without the clip.
    mild = torch.randn(4, 6, 6, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(4, 6, 6, dtype=torch.float64)
    (g1,) = torch.autograd.grad((arborescence_marginals(mild) * probe).sum(), mild)
    (g2,) = torch.autograd.grad(
        (arborescence_marginals(mild, max_range=math.inf) * probe).sum(), mild
    )
    torch.testing.assert_close(g1, g2)
    # Clip active: finite (raised entries pass their gradient to the column maximum).
    cold = (torch.randn(4, 6, 6, dtype=torch.float64) * 100).requires_grad_(True)
    for max_range in (None, 20.0):
        out = arborescence_marginals(cold, max_range=max_range)
        (g,) = torch.autograd.grad((out * probe).sum(), cold)
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("scale", [30.0, 100.0, 1e4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clipped_gradients_are_orthogonal_to_the_laws_shifts(
    scale: float, dtype: torch.dtype, clip: bool
) -> None:
    # The tree law ignores a global shift of the scores and the arborescence law
    # a shift of any column (one edge enters each vertex): with the clip active,
    # the gradient must have no component along them (issue 12: the floors were
    # detached, which gave a drift of 1e-3 of the gradient along the shift).
    gen = torch.Generator().manual_seed(int(scale))
    n, rows, cols = 8, *torch.triu_indices(8, 8, 1)
    scores = torch.randn(6, n, n, generator=gen, dtype=torch.float64) * scale
    probe = torch.randn(6, n, n, generator=gen, dtype=torch.float64)
    tree_in = scores.to(dtype).requires_grad_(True)
    tree_range, arb_range = (15.0, 20.0) if clip else (None, None)
    tree_out = spanning_tree_marginals(tree_in, max_range=tree_range)
    (g,) = torch.autograd.grad((tree_out * probe).sum(), tree_in)
    upper = g.double()[:, rows, cols]  # the entries read
    along = upper.sum(-1) / math.sqrt(upper.shape[-1])  # component along the shift
    assert (along.abs() <= 1e-7 * upper.norm(dim=-1).clamp_min(1.0)).all(), along
    arb_in = scores.to(dtype).requires_grad_(True)
    arb_out = arborescence_marginals(arb_in, max_range=arb_range)
    (g,) = torch.autograd.grad((arb_out * probe).sum(), arb_in)
    g = g.double() * (1 - torch.eye(n, dtype=torch.float64))
    g[:, :, 0] = 0  # edges into the root are not read
    along = g.sum(-2) / math.sqrt(n - 1)  # [B, n] per-column components
    # (The directed backward rounds more: measured up to 5e-7 at scale 1e4.)
    assert (along.abs() <= 1e-5 * g.norm(dim=(-2, -1)).clamp_min(1.0)[:, None]).all(), along


@pytest.mark.parametrize("seed", range(3))
def test_backward_is_accurate_when_scores_spread_widely(seed: int) -> None:
    # Two heavy clusters joined by edges 15 nats lighter: the inverse of the
    # Laplacian holds entries ~e^15 and (M L) M lost 1e-3 of the gradient to
    # rounding. Central differences of the float64 forward are the oracle.
    gen = torch.Generator().manual_seed(seed)
    n = 8
    rows, cols = torch.triu_indices(n, n, 1)
    scores = torch.randn(n, n, generator=gen, dtype=torch.float64) * 10
    probe = torch.randn(n, n, generator=gen, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (spanning_tree_marginals(x, max_range=math.inf) * probe).sum()

    clipped = scores.clamp(-2.0, 27.0)  # a spread of 29 nats, no clip
    x = clipped.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x)
    h = 1e-5
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        e = torch.zeros_like(clipped)
        e[r, c] = h
        fd = (f(clipped + e) - f(clipped - e)) / (2 * h)
        assert abs(float(fd) - float(g[r, c])) < 1e-6, (r, c, float(fd), float(g[r, c]))


@pytest.mark.parametrize("max_range", [None, 15.0])
def test_clip_floors_follow_the_maximum_as_the_reference(max_range: float | None) -> None:
    # The clip changes nothing when the scores are shifted: marginals and gradients
    # of θ + c equal those of θ.
    scores = torch.randn(4, 7, 7, dtype=torch.float64) * 40
    probe = torch.randn(4, 7, 7, dtype=torch.float64)
    outs = []
    for shift in (0.0, 1234.5):
        x = (scores + shift).requires_grad_(True)
        m = spanning_tree_marginals(x, max_range=max_range)
        (g,) = torch.autograd.grad((m * probe).sum(), x)
        outs.append((m, g))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1], atol=1e-9, rtol=1e-6)


def test_neg_inf_forbids_edges() -> None:
    scores = torch.randn(5, 5, dtype=torch.float64)
    scores[0, 1] = scores[1, 0] = -torch.inf
    scores[2, 3] = -torch.inf
    st = spanning_tree_marginals(scores)
    assert st[0, 1] == 0 and st[2, 3] == 0
    torch.testing.assert_close(
        st, expfamily_marginals(scores, enumerate_spanning_trees(5), upper=True)
    )
    arb = arborescence_marginals(scores)
    assert arb[0, 1] == 0 and arb[2, 3] == 0
    isolated = torch.zeros(4, 4)
    isolated[0, 1:] = -torch.inf
    isolated[1:, 0] = -torch.inf
    with pytest.raises(ValueError, match="connect"):
        spanning_tree_marginals(isolated)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_cut_graph_raises_and_no_connected_one_does(dtype: torch.dtype) -> None:
    # A block of vertices without finite edges in from the rest (the root's
    # side): rounding rarely leaves an exactly zero pivot, so this must be
    # found on the edge pattern. One edge across the cut connects it again.
    gen = torch.Generator().manual_seed(3)
    for trial in range(60):
        n = int(torch.randint(2, 20, (), generator=gen))
        k = int(torch.randint(1, n, (), generator=gen))
        perm = torch.randperm(n, generator=gen)
        a = torch.randn(n, n, dtype=torch.float64, generator=gen) * (1 + trial % 3)
        a[:k, k:] = -torch.inf
        a = a[perm][:, perm].to(dtype)
        root, across = int((perm == 0).nonzero()), int((perm == k).nonzero())
        root_scores = torch.where(perm < k, 0.0, -torch.inf).to(dtype)
        with pytest.raises(ValueError, match="do not connect every graph"):
            arborescence_marginals(a, root=root)
        with pytest.raises(ValueError, match="do not connect every graph"):
            multi_root_arborescence_marginals(a, root_scores)
        with pytest.raises(ValueError, match="do not connect every graph"):
            spanning_tree_marginals(torch.minimum(a, a.T))
        joined = a.clone()
        joined[root, across] = 0.0
        sym = torch.minimum(joined, joined.T)
        sym[root, across] = sym[across, root] = 0.0
        arborescence_marginals(joined, root=root)
        multi_root_arborescence_marginals(joined, root_scores)
        spanning_tree_marginals(sym)
    # Spanning trees delete vertex 0 for Kirchhoff's theorem: an isolated
    # vertex 0 leaves a singular minor of the other vertices' Laplacian.
    alone = torch.zeros(2, 6, 6, dtype=dtype)
    alone[1, 0, :] = -torch.inf
    with pytest.raises(ValueError, match="do not connect every graph"):
        spanning_tree_marginals(alone)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("depth", "cost"), [(2, 15.0), (3, 10.0), (5, 6.0), (5, 8.0), (8, 19.0)])
def test_nested_cycles_behind_forbidden_edges_stay_accurate(
    dtype: torch.dtype, depth: int, cost: float
) -> None:
    # A path 0 -> 1 -> ... whose forward edges cost `cost` nats, each vertex
    # also pointing back, every other edge forbidden: the only arborescence is
    # the path, but the 2-cycles nest `depth` deep and their costs compound in
    # the Laplacian (e^(depth * cost)) though no column spreads 20 nats.
    n = depth + 2
    x = torch.full((n, n), -torch.inf, dtype=dtype)
    for i in range(n - 1):
        x[i, i + 1] = -cost if i < depth else 0.0
        if i > 0:
            x[i + 1, i] = 0.0
    path = torch.diag(torch.ones(n - 1, dtype=torch.float64), 1)
    torch.testing.assert_close(arborescence_marginals(x).double(), path, atol=1e-6, rtol=0)
    roots = torch.full((n,), -torch.inf, dtype=dtype)
    roots[0] = 0.0
    edges, root_marginals = multi_root_arborescence_marginals(x, roots)
    torch.testing.assert_close(edges.double(), path, atol=1e-6, rtol=0)
    assert float(root_marginals[0]) == pytest.approx(1.0, abs=1e-6)


def test_forbidden_edges_clip_only_without_direct_root_edges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # While every vertex keeps a finite edge from the root the columns'
    # spreads bound the conditioning, and the (costly) dual clip is not needed.
    from structgrad.distributions import _arborescence_marginals as _matrix_tree

    calls = []
    original = _matrix_tree.dual_clip

    def counted(*args: object) -> torch.Tensor:
        calls.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_matrix_tree, "dual_clip", counted)
    x = torch.randn(8, 6, 6, dtype=torch.float64)
    x[:, 1:, 1:] = x[:, 1:, 1:].masked_fill(torch.rand(8, 5, 5) < 0.5, -torch.inf)
    arborescence_marginals(x)
    multi_root_arborescence_marginals(x, torch.randn(8, 6, dtype=torch.float64))
    assert not calls
    x[:, 0, 3] = -torch.inf  # vertex 3 only through others: nested cycles possible
    x[:, 1, 3] = 0.0
    x[:, 0, 1] = 0.0
    arborescence_marginals(x)  # the default: exact, by elimination
    assert not calls
    arborescence_marginals(x, max_range=20.0)
    assert len(calls) == 1


def test_float32_falls_back_to_float64_when_rounding_is_amplified() -> None:
    # Tightly knit pairs weakly attached to the rest: the Laplacian amplifies
    # float32 rounding by about e^10 within the 10-nat float32 budget (2e-4
    # errors); the sum identities reveal it and float64 takes over.
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0], [0.0, 10.0, 0.0]])
    torch.testing.assert_close(
        arborescence_marginals(x).double(), arborescence_marginals(x.double()), atol=1e-6, rtol=0
    )
    pair = torch.tensor([[0.0, 10.0], [10.0, 0.0]])
    edges, roots = multi_root_arborescence_marginals(pair, torch.zeros(2))
    want_e, want_r = multi_root_arborescence_marginals(pair.double(), torch.zeros(2).double())
    torch.testing.assert_close(edges.double(), want_e, atol=1e-6, rtol=0)
    torch.testing.assert_close(roots.double(), want_r, atol=1e-6, rtol=0)
    assert edges.dtype == roots.dtype == torch.float32
    s = torch.zeros(6, 6)
    s[0, 1] = s[0, 2] = s[1, 2] = s[3, 4] = s[3, 5] = s[4, 5] = 10.0
    torch.testing.assert_close(
        spanning_tree_marginals(s).double(), spanning_tree_marginals(s.double()), atol=1e-6, rtol=0
    )
    # Random scores within the budget stay in float32 (no silent float64).
    calls = []
    original = _laplacian._DirectedMarginals.apply

    def spy(a: torch.Tensor, *rest: object) -> object:
        calls.append(a.dtype)
        return original(a, *rest)

    _laplacian._DirectedMarginals.apply = spy  # type: ignore[method-assign]
    try:
        arborescence_marginals(torch.randn(64, 10, 10))
    finally:
        _laplacian._DirectedMarginals.apply = original  # type: ignore[method-assign]
    assert calls == [torch.float32]


def test_batch_dims_dtype_device() -> None:
    scores = torch.randn(2, 3, 4, 4)
    for fn in (spanning_tree_marginals, arborescence_marginals):
        out = fn(scores)
        assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_float32_matches_float64(scale: float) -> None:
    # float32 input within 10 nats runs a float32 Laplacian, wider ones float64:
    # either way the result is within 1e-5 of the float64 computation, and so
    # are the gradients (relative to their size).
    gen = torch.Generator().manual_seed(0)
    x64 = torch.randn(16, 12, 12, dtype=torch.float64, generator=gen) * scale
    roots = torch.randn(16, 12, dtype=torch.float64, generator=gen) * scale
    probe = torch.randn(16, 12, 12, dtype=torch.float64, generator=gen)
    fns = (
        spanning_tree_marginals,
        arborescence_marginals,
        lambda s: torch.cat(multi_root_arborescence_marginals(s, roots.to(s.dtype))[0:1]),
    )
    for fn in fns:
        outs, grads = [], []
        for x in (x64, x64.float()):
            leaf = x.clone().requires_grad_(True)
            out = fn(leaf)
            (grad,) = torch.autograd.grad((out * probe.to(x.dtype)).sum(), leaf)
            assert out.dtype == x.dtype and grad.dtype == x.dtype
            outs.append(out.double())
            grads.append(grad.double())
        torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(grads[1], grads[0], atol=1e-5 * grads[0].abs().max(), rtol=0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: spanning_tree_marginals(torch.zeros(3, 4)), "shape"),
        (lambda: spanning_tree_marginals(torch.zeros(1, 1)), "n >= 2"),
        (lambda: spanning_tree_marginals(torch.full((3, 3), torch.nan)), "NaN"),
        (
            lambda: spanning_tree_marginals(torch.zeros(2, 3, 3), lengths=torch.tensor([0, 3])),
            "lengths",
        ),
        (lambda: spanning_tree_marginals(torch.zeros(3, 3), max_range=-1.0), "max_range"),
        (lambda: arborescence_marginals(torch.zeros(3, 3), root=3), "root"),
        (
            lambda: arborescence_marginals(
                torch.zeros(2, 3, 3), root=2, lengths=torch.tensor([2, 3])
            ),
            "root",
        ),
        (
            lambda: multi_root_arborescence_marginals(torch.zeros(3, 3), torch.zeros(4)),
            "root_scores",
        ),
        (
            lambda: multi_root_arborescence_marginals(
                torch.zeros(3, 3), torch.tensor([0.0, torch.nan, 0.0])
            ),
            "root_scores contains NaN",
        ),
        (lambda: arborescence_marginals(torch.full((3, 3), torch.inf)), r"\+inf"),
        (lambda: arborescence_marginals(torch.zeros(3, 3), root=3), r"root must lie in \[0, 2\]"),
        (lambda: arborescence_marginals(torch.zeros(3, 3), root=1.0), "root must be"),
        # Finite scores 2000 nats apart without the clip: underflow, not disconnection.
        (
            lambda: spanning_tree_marginals(
                torch.tensor([[0, 1e3, 0], [0, 0, -1e3], [0, 0, 0.0]], dtype=torch.float64),
                max_range=math.inf,
            ),
            "float64 can hold",
        ),
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_closed_form_backward_matches_autograd_and_supports_double_backward() -> None:
    # The closed-form forward and VJP against autograd through the differentiable
    # reference, with padding, a -inf edge, a virtual root and every kind of
    # removed-vertex argument; then second derivatives.
    from structgrad.distributions._laplacian import (
        _directed_reference,
        _undirected_reference,
        directed_marginals,
        undirected_marginals,
    )

    gen = torch.Generator().manual_seed(5)
    a = torch.randn(3, 6, 5, dtype=torch.float64, generator=gen)  # 5 vertices + virtual row
    a[..., :5, :].diagonal(dim1=-2, dim2=-1).fill_(-torch.inf)
    a[1, 2, 3] = -torch.inf
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[2, 4] = True
    a[2, 4, :] = -torch.inf
    a[2, :, 4] = -torch.inf
    upstream = torch.randn(3, 6, 5, dtype=torch.float64, generator=gen)
    # Graph 2 has vertex 4 outside: only the mask removes it.
    # A per-column shift scales each vertex's in-edges alike: same marginals.
    column_shift = torch.randn(3, 1, 5, dtype=torch.float64, generator=gen)
    cases = ((6, mask, 3, None), (6, None, 2, column_shift[:2]), (5, 2, 2, None), (5, 2, 2, 3.0))
    for rows, removed, size, shift_by in cases:
        leaf = a[:size, :rows].clone().requires_grad_(True)
        shift_t = None if shift_by is None else torch.as_tensor(shift_by, dtype=leaf.dtype)
        edges, virtual = directed_marginals(leaf, removed, shift_t)
        assert virtual.shape == (size, rows - 5, 5)
        fast_mu = torch.cat([edges, virtual], -2)
        slow_mu = _directed_reference(leaf, removed)
        torch.testing.assert_close(fast_mu, slow_mu, rtol=1e-10, atol=1e-12)
        (fast,) = torch.autograd.grad(fast_mu, leaf, upstream[:size, :rows])
        (slow,) = torch.autograd.grad(slow_mu, leaf, upstream[:size, :rows])
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
        assert torch.isfinite(fast).all()
    x = torch.randn(3, 5, 5, dtype=torch.float64, generator=gen)
    x[1, 1, 3] = -torch.inf
    x[2, :, 4] = x[2, 4, :] = -torch.inf  # vertex 4 outside graph 2
    shift = torch.full((3, 1, 1), 0.5, dtype=torch.float64)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[:, 0] = True
    mask[2, 4] = True
    for removed in (mask, 0):
        data = x if removed is mask else x[:2]
        leaf = data.clone().requires_grad_(True)
        fast_mu = undirected_marginals(leaf, removed, shift[: len(data)])
        slow_mu = _undirected_reference(leaf, removed, shift[: len(data)])
        torch.testing.assert_close(fast_mu, slow_mu, rtol=1e-10, atol=1e-12)
        g = upstream[: len(data), :5]
        (fast,) = torch.autograd.grad(fast_mu, leaf, g)
        (slow,) = torch.autograd.grad(slow_mu, leaf, g)
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
        assert torch.equal(fast, fast.triu(1))  # only the upper triangle is read

    s = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: spanning_tree_marginals(x), (s,))
    assert torch.autograd.gradgradcheck(lambda x: arborescence_marginals(x, root=1), (s,))
