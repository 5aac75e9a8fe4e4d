"""The toy problems: one structure and one loss (minimised) each, with its optimum.

Four are the recursive Gumbel-max toys of Struminsky et al. (2021, §5) and one
is the synthetic top-k problem of Niepert et al. (2021):

============== ============================ ====================================== =========
structure      logits θ                     loss of a sample                       optimum
============== ============================ ====================================== =========
arborescence   ``[n, n]`` (edge i→j, root 0) −(max out-degree)                      −(n−1)
binary_tree    ``[n]``                      −height (levels of the split tree)     −n
matching       ``[n, n]``                   −(# pairs on the main diagonal)        −n
spanning_tree  ``[n, n]`` (upper triangle)  # edges not incident to vertex 0       0
k_subset       ``[n]``, k = n // 2          ‖z − b‖², ``b = |N(0, I)|``            enumerated
============== ============================ ====================================== =========

The spanning-tree loss is the *intended* one (the star around vertex 0 scores
0): the reference code indexes the edge list on the wrong axis (its star
scores 1). The top-k target ``b`` is drawn once from ``--target-seed`` (the
IMLE synthetic problem draws ``b = |randn(10)|`` with seed 0 in numpy; ours is
torch's stream, so the numbers differ, the problem does not).

References:
    Struminsky, Gadetsky, Rakitin, Karpushkin and Vetrov, "Leveraging
    Recursive Gumbel-Max Trick for Approximate Inference in Combinatorial
    Spaces", NeurIPS 2021, https://arxiv.org/abs/2110.15072.
    Niepert, Minervini and Franceschi, "Implicit MLE: Backpropagating Through
    Discrete Exponential Family Distributions", NeurIPS 2021,
    https://arxiv.org/abs/2106.01798.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import structgrad.solvers as solvers
from structgrad.testing.toys import (
    arborescence_loss,
    binary_tree_height,
    binary_tree_loss,
    matching_loss,
    spanning_tree_loss,
)

__all__ = [
    "STRUCTURES",
    "Problem",
    "arborescence_loss",
    "binary_tree_height",
    "binary_tree_loss",
    "make_problem",
    "matching_loss",
    "spanning_tree_loss",
    "subset_loss",
]

#: The structures of the app, in the order of the tables and plots.
STRUCTURES = ("arborescence", "binary_tree", "matching", "spanning_tree", "k_subset")


def subset_loss(z: Tensor, b: Tensor) -> Tensor:
    """‖z − b‖² of k-subsets ``z [*batch, n]`` against the target ``b [n]``."""
    return ((z - b) ** 2).sum(-1)


@dataclass(frozen=True)
class Problem:
    """One toy: its structure, logits shape, loss and optimum.

    Attributes:
        structure: a structgrad structure name.
        dim: number of vertices / items ``n``.
        event_shape: shape of the logits θ.
        options: structure options (``k`` for k-subsets, ``root`` for arborescences).
        optimum: the smallest loss of any structure.
        target: ``b [n]`` for the top-k problem, else ``None``.
    """

    structure: str
    dim: int
    event_shape: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    optimum: float = 0.0
    target: Tensor | None = None

    def loss(self, z: Tensor) -> Tensor:
        """Per-sample loss ``[*batch]`` of samples ``z [*batch, *event]``."""
        if self.structure == "k_subset":
            assert self.target is not None
            return subset_loss(z, self.target.to(z))
        return _LOSSES[self.structure](z)


_LOSSES = {
    "arborescence": arborescence_loss,
    "binary_tree": binary_tree_loss,
    "matching": matching_loss,
    "spanning_tree": spanning_tree_loss,
}


def subset_target(dim: int, seed: int) -> Tensor:
    """The top-k target ``b = |N(0, I_n)|`` drawn from ``seed`` (float64)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(dim, generator=gen, dtype=torch.float64).abs()


def make_problem(
    structure: str, dim: int, *, k: int | None = None, target_seed: int = 0
) -> Problem:
    """Build the toy of ``structure`` on ``dim`` vertices / items.

    Args:
        structure: one of :data:`STRUCTURES`.
        dim: ``n ≥ 2``.
        k: subset size for ``k_subset`` (default ``n // 2``: top-5 of 10).
        target_seed: seed of the top-k target ``b``.

    Raises:
        ValueError: unknown structure, ``n < 2`` or ``k`` outside ``[1, n − 1]``.
    """
    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; choose one of: {', '.join(STRUCTURES)}")
    if dim < 2:
        raise ValueError(f"--dim must be >= 2, got {dim}")
    if structure == "arborescence":
        return Problem(structure, dim, (dim, dim), {"root": 0}, optimum=-(dim - 1.0))
    if structure == "binary_tree":
        return Problem(structure, dim, (dim,), optimum=-float(dim))
    if structure == "matching":
        return Problem(structure, dim, (dim, dim), optimum=-float(dim))
    if structure == "spanning_tree":
        return Problem(structure, dim, (dim, dim), optimum=0.0)
    k = dim // 2 if k is None else k
    if not 1 <= k <= dim - 1:
        raise ValueError(f"--k must lie in [1, {dim - 1}] for --dim {dim}, got {k}")
    b = subset_target(dim, target_seed)
    # Exhaustive: C(n, k) subsets (252 for top-5 of 10).
    subsets = torch.as_tensor(solvers.enumerate_k_subsets(dim, k), dtype=torch.float64)
    optimum = float(subset_loss(subsets, b).min())
    return Problem(structure, dim, (dim,), {"k": k}, optimum=optimum, target=b)
