"""Structures over items and sequences: categorical, k-subset, matching, binary tree, grid path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

import structgrad.solvers as solvers
from structgrad.solvers import InvalidScoresError

from ._ksubset import k_subset_sample, kth_largest
from ._ksubset_marginals import k_subset_log_partition, k_subset_marginals
from ._sinkhorn import sinkhorn
from ._structure import Structure
from ._trace import CategoricalTracing, KSubsetTracing
from ._trace_matching import MatchingTracing
from ._trace_sequence import BinaryTreeTracing
from ._utils import logsumexp, relaxation_input
from .checks import check_flag, check_int, validation_enabled

__all__ = [
    "BinaryTreeStructure",
    "CategoricalStructure",
    "GridPathStructure",
    "KSubsetStructure",
    "MatchingStructure",
]


# The lean top-k entry of structgrad-solvers (an older one without it: the public call).
_top_k_rows = getattr(solvers, "top_k_rows", None)
_ROW_DTYPES = (torch.float32, torch.float64)


def _top_k(scores: Tensor, k: int) -> Tensor:
    """``solvers.top_k(scores, k)``, straight on the numpy view of a CPU ``[N, n]`` tensor.

    The same kernel, value checks and errors as the public call without its
    conversions (measured: 7-8 µs a call on [64, 100]; estimators make two or
    three calls a step).
    """
    if (
        _top_k_rows is not None
        and not torch.compiler.is_compiling()  # traced: the solver's registered op
        and scores.ndim == 2
        and scores.dtype in _ROW_DTYPES
        and scores.is_cpu
        and 0 <= k <= scores.shape[1]
        and not scores.is_neg()
    ):
        rows = np.ascontiguousarray(scores.detach().numpy())
        return torch.from_numpy(_top_k_rows(rows, k))
    out: Tensor = solvers.top_k(scores, k)
    return out


def _stack(array: Any) -> Tensor:
    return torch.from_numpy(array).to(torch.float64)


class CategoricalStructure(CategoricalTracing, Structure):
    """One of ``n`` categories as a one-hot ``[..., n]``; ``p ∝ exp(θ)`` is the softmax."""

    name = "categorical"
    event_dim = 1
    relaxation = "softmax"
    map_checks_values = False  # its MAP is torch's argmax, which reads NaN as a maximum

    def ones(self, event_shape: Any, **options: Any) -> float:
        return 1.0

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        if scores.numel() and validation_enabled() and bool(torch.isneginf(scores).all(-1).any()):
            raise InvalidScoresError("scores: some row is all -inf: no category can be chosen")

    def _relax(self, scores: Tensor, tau: Tensor, **opts: Any) -> Tensor:
        # shift-invariant: subtracting the max keeps scores / tau finite
        top = scores.detach().amax(-1, keepdim=True)
        return torch.softmax(relaxation_input(scores, tau, top), dim=-1)

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        # One-hot argmax in torch (ties to the lowest index, as solvers.top_k): it
        # stays on the scores' device, and estimators call it several times a step.
        index = scores.argmax(dim=-1, keepdim=True)
        return torch.zeros_like(scores).scatter_(-1, index, 1.0)

    def enumerate(self, n: int, **options: Any) -> Tensor:
        self.options(options)
        return _stack(solvers.enumerate_k_subsets(n, 1))

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        return logsumexp(scores, -1)

    def _contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """One-hot vectors: 0/1 with exactly one 1."""
        return super()._contains(scores, x) & (x.sum(-1) == 1)

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        # Gumbel-max: argmax(θ + G) has the softmax law exactly.
        wide = self.perturb(scores.expand(*shape, *scores.shape), generator=generator, wide=True)
        index = wide.argmax(-1, keepdim=True)
        return torch.zeros_like(wide, dtype=scores.dtype).scatter_(-1, index, 1.0)


class KSubsetStructure(KSubsetTracing, Structure):
    """Subsets of exactly ``k`` of ``n`` items as 0/1 masks ``[..., n]``."""

    name = "k_subset"
    event_dim = 1
    option_names = ("k",)
    required = ("k",)

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        k = opts["k"] = check_int(opts["k"], "k", 0, scores.shape[-1])
        # A value check (off with the checks, and while tracing): with fewer than
        # k entries above -inf every k-subset takes a -inf item; top-k would
        # return one. (NaN and +inf count here: the value check names them.)
        checked = validation_enabled() and k and scores.numel()
        if checked and bool((torch.isneginf(scores).logical_not().sum(-1) < k).any()):
            raise InvalidScoresError(
                "scores: the -inf (forbidden) entries leave no k_subset with positive "
                f"probability (a row has fewer than k = {k} finite scores)"
            )

    def ones(self, event_shape: Any, **options: Any) -> float:
        return float(max(int(self.options(options)["k"]), 1))

    def polytope(self, n: int, **options: Any) -> tuple[np.ndarray, ...]:
        """``Σ x = k`` (with ``x <= 1``) for ``0 < k < n``."""
        k = self.options(options)["k"]
        # (numpy and torch integers too, as map takes them)
        if isinstance(k, bool) or not hasattr(k, "__index__") or not 0 < int(k) < n:
            raise ValueError(f"k_subset needs 0 < k < n = {n}, got k = {k!r}")
        k = int(k)
        return np.ones((1, n)), np.array([float(k)]), np.eye(n), np.ones(n)

    def _relax(self, scores: Tensor, tau: Tensor, **opts: Any) -> Tensor:
        # Every k-subset has k items: shift-invariant. The marginals are resolved
        # around the k-th largest score (above it items are in, below out).
        k = opts["k"]
        return k_subset_marginals(relaxation_input(scores, tau, kth_largest(scores, k)), k)

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        return _top_k(scores, opts["k"])

    def enumerate(self, n: int, **options: Any) -> Tensor:
        k = self.options(options)["k"]
        return _stack(solvers.enumerate_k_subsets(n, k))

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        # log Z(θ) = log Z(θ − c) + k c (every subset has k items): centred at the
        # k-th largest score, the DP and its gradient (the marginals) do not lose
        # float32's digits to an offset common to all scores; the DP runs in
        # float64 where float32 would lose digits to the spread (its _work).
        k = opts["k"]
        kth = kth_largest(scores, k)
        kth = torch.where(torch.isfinite(kth), kth, torch.zeros_like(kth))
        return k_subset_log_partition(scores - kth, k) + k * kth.squeeze(-1)

    def _contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """0/1 masks of exactly ``k`` items."""
        return super()._contains(scores, x) & (x.sum(-1) == opts["k"])

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        return k_subset_sample(scores, opts["k"], shape, generator=generator)


class MatchingStructure(MatchingTracing, Structure):
    """Perfect matchings of ``K_{n,n}`` (permutations) as permutation matrices ``[..., n, n]``."""

    name = "matching"
    event_dim = 2
    square = True
    intractable = (
        "matching: the partition function over perfect matchings is a matrix permanent "
        "(#P-hard, Valiant 1979), so there are no exact marginals or samples; use the "
        "Sinkhorn relaxation (structgrad.relaxations.gumbel_sinkhorn) or perturb-and-MAP"
    )

    relax_option_checks: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "n_iters": lambda v: check_int(v, "n_iters", 1),
        "anneal": lambda v: check_flag(v, "anneal"),
    }
    relax_option_names = tuple(relax_option_checks)
    relaxation = "sinkhorn"

    def ones(self, event_shape: Any, **options: Any) -> float:
        return float(event_shape[-1])

    def polytope(self, n: int, **options: Any) -> tuple[np.ndarray, ...]:
        """The Birkhoff polytope: every row and column of the ``n x n`` matrix sums to 1."""
        self.options(options)
        eye = np.eye(n)
        rows, cols = np.kron(eye, np.ones((1, n))), np.kron(np.ones((1, n)), eye)
        return np.vstack([rows, cols]), np.ones(2 * n), np.zeros((0, n * n)), np.zeros(0)

    def _relax(self, scores: Tensor, tau: Tensor, **opts: Any) -> Tensor:
        # Entropy-regularised matching (the permanent makes its marginals intractable).
        n_iters, anneal = opts.get("n_iters", 20), opts.get("anneal", True)
        return sinkhorn(scores, n_iters=n_iters, tau=tau, anneal=anneal)

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.linear_assignment(scores)
        return out

    def _contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """Permutation matrices: 0/1 with one 1 in every row and every column."""
        one = (x.sum(-1) == 1).all(-1) & (x.sum(-2) == 1).all(-1)
        return super()._contains(scores, x) & one

    def enumerate(self, n: int, **options: Any) -> Tensor:
        self.options(options)
        return _stack(solvers.enumerate_permutations(n))


class BinaryTreeStructure(BinaryTreeTracing, Structure):
    """Binary trees by recursive argmax splits of a sequence; adjacency ``[..., n, n]``."""

    name = "binary_tree"
    event_dim = 1
    forbids = False  # every element is a node
    option_names = ("lengths",)
    defaults: ClassVar[dict[str, Any]] = {"lengths": None}
    intractable = (
        "binary_tree: its scores [..., n] rank split points, they are not potentials of the "
        "tree's edges, so no exponential family over trees is defined; use the recursive-Gumbel "
        "trace (structgrad.solvers.binary_tree(..., return_trace=True)) or perturb-and-MAP"
    )
    nonlinear = (
        "binary_tree: its solution (an [n, n] adjacency) does not live in the space of its [n] "
        "scores, so MAP(θ) is not argmax <z, θ> and perturbation-based estimators do not "
        "apply; use a score-function estimator over its trace"
    )
    relax_missing = "binary_tree: its split trace has no tractable exponential-family relaxation"
    relaxation = None
    membership = "binary_tree: whether an adjacency is a split tree is not checked (no law)"

    def score(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """Not defined: ``<θ, x>`` needs ``x`` in the space of ``θ`` (see :attr:`nonlinear`)."""
        raise NotImplementedError(self.nonlinear)

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
    minimize = True
    forbids = False  # costs
    map_checks_values = False  # perturbed costs are clipped at 0 before Dijkstra
    relax_missing = "grid_path: shortest paths have no tractable exponential-family relaxation here"
    relaxation = None
    membership = "grid_path: whether a mask is a corner-to-corner path is not checked (no law)"

    def ones(self, event_shape: Any, **options: Any) -> float:
        # 8-neighbour paths from corner to corner visit at least max(H, W) cells;
        # 1.3·size is the Sum-of-Gamma k used for Warcraft maps by Niepert et al.
        return 1.3 * max(event_shape[-2], event_shape[-1])

    intractable = (
        "grid_path: a sum over all grid paths of exp(-cost) is not implemented (there is no "
        "enumerator or DP for 8-neighbour paths here); use perturb-and-MAP estimators on costs"
    )

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        valid = (scores >= 0).all() & torch.isfinite(scores).all()
        if scores.numel() and validation_enabled() and not bool(valid):
            raise InvalidScoresError("scores: grid_path costs must be finite and non-negative")

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.grid_shortest_path(scores)
        return out
