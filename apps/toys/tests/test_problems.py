import math

import pytest
import torch
from structgrad_app_common import CLIError
from toys.methods import ESTIMATORS, PATHWISE, applicable, build, check
from toys.problems import (
    STRUCTURES,
    arborescence_loss,
    binary_tree_height,
    make_problem,
    matching_loss,
    spanning_tree_loss,
    subset_loss,
)

import structgrad.estimators as est
import structgrad.solvers as solvers


def test_star_arborescence_scores_minus_n_minus_1():
    n = 6
    star = torch.zeros(n, n)
    star[0, 1:] = 1  # root 0 -> every other vertex
    assert float(arborescence_loss(star)) == -(n - 1)
    chain = torch.diag(torch.ones(n - 1), 1)  # 0 -> 1 -> ... -> n-1
    assert float(arborescence_loss(chain)) == -1
    # batched, and the optimum of the toy is the star
    assert arborescence_loss(torch.stack([star, chain])).tolist() == [-(n - 1), -1]
    assert make_problem("arborescence", n).optimum == -(n - 1)


def test_binary_tree_height_hand_cases():
    n = 7
    chain = torch.diag(torch.ones(n - 1), 1)  # parent i -> child i+1
    assert float(binary_tree_height(chain)) == n
    assert float(binary_tree_height(chain.T.contiguous())) == n  # the other chain
    # balanced tree on 7 vertices, root 3: children 1, 5; leaves 0, 2, 4, 6
    bal = torch.zeros(n, n)
    for p, c in [(3, 1), (3, 5), (1, 0), (1, 2), (5, 4), (5, 6)]:
        bal[p, c] = 1
    assert float(binary_tree_height(bal)) == 3
    assert make_problem("binary_tree", n).optimum == -n


def test_binary_tree_height_matches_the_solver_depths():
    u = torch.randn(64, 9, generator=torch.Generator().manual_seed(0))
    adj, trace = solvers.binary_tree(u, return_trace=True)
    depth = torch.as_tensor(trace.depth)
    assert torch.equal(binary_tree_height(adj), (depth.amax(-1) + 1).to(adj.dtype))


def test_identity_matching_and_star_spanning_tree():
    n = 5
    assert float(matching_loss(torch.eye(n))) == -n
    assert float(matching_loss(torch.eye(n).flip(0))) == -1  # odd n: the centre only
    star = torch.zeros(n, n)
    star[0, 1:] = star[1:, 0] = 1
    assert float(spanning_tree_loss(star)) == 0
    path = torch.diag(torch.ones(n - 1), 1)
    path = path + path.T  # 0-1-2-3-4: only the edge 0-1 touches vertex 0
    assert float(spanning_tree_loss(path)) == n - 2
    assert make_problem("spanning_tree", n).optimum == 0


def test_subset_problem_optimum_by_hand():
    p = make_problem("k_subset", 10)
    assert p.options == {"k": 5} and p.target is not None
    b = p.target
    best = torch.zeros(10, dtype=b.dtype)
    best[b.topk(5).indices] = 1  # picking i costs (1 − b_i)² instead of b_i²
    assert p.optimum == pytest.approx(float(subset_loss(best, b)))
    expected = float((b**2).sum() - (b**2)[best > 0].sum() + ((1 - b) ** 2)[best > 0].sum())
    assert p.optimum == pytest.approx(expected)


def test_losses_on_sampled_structures_are_in_range():
    gen = torch.Generator().manual_seed(1)
    for s in STRUCTURES:
        p = make_problem(s, 6)
        z = est.sample_with_trace(s, torch.zeros(32, *p.event_shape), generator=gen, **p.options)
        loss = p.loss(z.sample)
        assert loss.shape == (32,) and bool((loss >= p.optimum - 1e-9).all()), s
        assert math.isfinite(float(loss.mean()))


def test_applicability_and_one_line_errors():
    assert set(applicable("k_subset")) == set(ESTIMATORS)
    for s in ("arborescence", "binary_tree", "matching"):
        assert not set(applicable(s)) & set(PATHWISE)
    with pytest.raises(CLIError, match="does not apply"):
        check("matching", "imle")
    with pytest.raises(CLIError, match="unknown structure"):
        check("tree", "relax")
    with pytest.raises(CLIError, match="unknown estimator"):
        check("matching", "reinforce++")
    with pytest.raises(CLIError, match="plus-samples"):
        build(make_problem("matching", 4), "t-reinforce+", plus_samples=1)
    with pytest.raises(ValueError, match="k must lie"):
        make_problem("k_subset", 4, k=4)
