"""The toy losses on hand-built structures with known optima."""

import torch

import structgrad.solvers as solvers
from structgrad.testing import toys


def test_optima_and_counter_examples() -> None:
    n = 5
    star = torch.zeros(1, n, n)
    star[0, 0, 1:] = 1.0  # arborescence: every edge leaves the root
    chain = torch.diag_embed(torch.ones(1, n - 1), offset=1)  # 0 -> 1 -> ... -> n-1
    assert toys.arborescence_loss(star).item() == -(n - 1)
    assert toys.arborescence_loss(chain).item() == -1
    assert toys.binary_tree_height(chain).item() == n
    assert toys.binary_tree_loss(chain).item() == -n
    assert toys.matching_loss(torch.eye(n)[None]).item() == -n
    assert toys.matching_loss(torch.eye(n).roll(1, 0)[None]).item() == 0
    undirected = star + star.transpose(-1, -2)
    assert toys.spanning_tree_loss(undirected).item() == 0
    path = chain + chain.transpose(-1, -2)
    assert toys.spanning_tree_loss(path).item() == n - 2


def test_binary_tree_height_matches_the_solver_depths() -> None:
    scores = torch.randn(64, 7, generator=torch.Generator().manual_seed(0))
    tree, trace = solvers.binary_tree(scores, return_trace=True)
    torch.testing.assert_close(toys.binary_tree_height(tree), trace.depth.amax(-1).float() + 1)
