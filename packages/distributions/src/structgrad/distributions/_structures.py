"""Structures over items and sequences: categorical, k-subset, matching, binary tree, grid path."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._ksubset import k_subset_log_partition, k_subset_sample
from ._structure import Structure
from ._utils import check_int, logsumexp

__all__ = [
    "BinaryTreeStructure",
    "CategoricalStructure",
    "GridPathStructure",
    "KSubsetStructure",
    "MatchingStructure",
]


def _stack(array: Any) -> Tensor:
    return torch.from_numpy(array).to(torch.float64)


class CategoricalStructure(Structure):
    """One of ``n`` categories as a one-hot ``[..., n]``; ``p ∝ exp(θ)`` is the softmax."""

    name = "categorical"
    event_dim = 1

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.top_k(scores, 1)
        return out

    def enumerate(self, n: int, **options: Any) -> Tensor:
        self.options(options)
        return _stack(solvers.enumerate_k_subsets(n, 1))

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        return logsumexp(scores, -1)

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        # Gumbel-max: argmax(θ + G) has the softmax law exactly.
        noisy = scores.expand(*shape, *scores.shape) + self.gumbel(
            scores.expand(*shape, *scores.shape), generator=generator
        )
        index = noisy.argmax(-1, keepdim=True)
        return torch.zeros_like(noisy).scatter_(-1, index, 1.0)


class KSubsetStructure(Structure):
    """Subsets of exactly ``k`` of ``n`` items as 0/1 masks ``[..., n]``."""

    name = "k_subset"
    event_dim = 1
    option_names = ("k",)
    required = ("k",)

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        opts["k"] = check_int(opts["k"], "k", 0, scores.shape[-1])

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.top_k(scores, opts["k"])
        return out

    def enumerate(self, n: int, **options: Any) -> Tensor:
        k = self.options(options)["k"]
        return _stack(solvers.enumerate_k_subsets(n, k))

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        return k_subset_log_partition(scores, opts["k"])

    def contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """0/1 masks of exactly ``k`` items."""
        return super().contains(scores, x) & (x.sum(-1) == opts["k"])

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        return k_subset_sample(scores, opts["k"], shape, generator=generator)


class MatchingStructure(Structure):
    """Perfect matchings of ``K_{n,n}`` (permutations) as permutation matrices ``[..., n, n]``."""

    name = "matching"
    event_dim = 2
    square = True
    intractable = (
        "matching: the partition function over perfect matchings is a matrix permanent "
        "(#P-hard, Valiant 1979), so there are no exact marginals or samples; use the "
        "Sinkhorn relaxation (structgrad.relaxations.gumbel_sinkhorn) or perturb-and-MAP"
    )

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.linear_assignment(scores)
        return out

    def enumerate(self, n: int, **options: Any) -> Tensor:
        self.options(options)
        return _stack(solvers.enumerate_permutations(n))


class BinaryTreeStructure(Structure):
    """Binary trees by recursive argmax splits of a sequence; adjacency ``[..., n, n]``."""

    name = "binary_tree"
    event_dim = 1
    option_names = ("lengths",)
    defaults: ClassVar[dict[str, Any]] = {"lengths": None}
    intractable = (
        "binary_tree: its scores [..., n] rank split points, they are not potentials of the "
        "tree's edges, so no exponential family over trees is defined; use the recursive-Gumbel "
        "trace (structgrad.solvers.binary_tree(..., return_trace=True)) or perturb-and-MAP"
    )

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        self.lengths_mask(scores, opts["lengths"])

    def solution_shape(self, event_shape: torch.Size) -> torch.Size:
        return torch.Size((event_shape[-1], event_shape[-1]))

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.binary_tree(scores, lengths=opts["lengths"])
        return out

    def enumerate(self, n: int, **options: Any) -> Tensor:
        self.options(options)
        return _stack(solvers.enumerate_binary_trees(n))


class GridPathStructure(Structure):
    """Cheapest top-left to bottom-right 8-neighbour paths on a grid of costs ``[..., H, W]``.

    Unlike the other structures its scores are costs (non-negative), and MAP minimises.
    """

    name = "grid_path"
    event_dim = 2
    intractable = (
        "grid_path: a sum over all grid paths of exp(-cost) is not implemented (there is no "
        "enumerator or DP for 8-neighbour paths here); use perturb-and-MAP estimators on costs"
    )

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        if scores.numel() and not bool((scores >= 0).all() & torch.isfinite(scores).all()):
            raise ValueError("scores: grid_path costs must be finite and non-negative")

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.grid_shortest_path(scores)
        return out
