import math

import pytest
import torch

import structgrad.solvers as solvers
from structgrad.relaxations import (
    arborescence_marginals,
    multi_root_arborescence_marginals,
    spanning_tree_marginals,
)
from structgrad.solvers import enumerate_arborescences, enumerate_spanning_trees
from structgrad.testing.exact import expfamily_marginals


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


def test_clipping_keeps_the_maximum_spanning_tree_limit() -> None:
    # Distinct scores 0.1 apart: at tau = 1e-4 every gap is at least 1000 nats.
    scores = torch.stack([torch.randperm(49).double().view(7, 7) for _ in range(20)]) * 0.1
    mst = solvers.max_spanning_tree(scores)
    for tau in (1e-4, 1e-6, 1e-9):
        soft = spanning_tree_marginals(scores / tau)
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


def test_batch_dims_dtype_device() -> None:
    scores = torch.randn(2, 3, 4, 4)
    for fn in (spanning_tree_marginals, arborescence_marginals):
        out = fn(scores)
        assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32


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
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_closed_form_backward_matches_autograd_and_supports_double_backward() -> None:
    # The closed-form VJP against autograd through the differentiable forward,
    # with padding, a -inf edge and a virtual root; then second derivatives.
    from structgrad.relaxations._laplacian import _forward, directed_marginals

    gen = torch.Generator().manual_seed(5)
    a = torch.randn(3, 6, 5, dtype=torch.float64, generator=gen)  # 5 vertices + virtual row
    a[..., :5, :].diagonal(dim1=-2, dim2=-1).fill_(-torch.inf)
    a[1, 2, 3] = -torch.inf
    removed = torch.zeros(3, 5, dtype=torch.bool)
    removed[2, 4] = True
    a[2, 4, :] = -torch.inf
    a[2, :, 4] = -torch.inf
    upstream = torch.randn(3, 6, 5, dtype=torch.float64, generator=gen)
    leaf = a.clone().requires_grad_(True)
    (fast,) = torch.autograd.grad(directed_marginals(leaf, removed), leaf, upstream)
    (slow,) = torch.autograd.grad(_forward(leaf, removed)[0], leaf, upstream)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    assert torch.isfinite(fast).all()

    s = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: spanning_tree_marginals(x), (s,))
    assert torch.autograd.gradgradcheck(lambda x: arborescence_marginals(x, root=1), (s,))
