"""Graph structures: undirected spanning trees of ``K_n`` and rooted arborescences.

Undirected scores and trees are symmetric ``[..., n, n]`` matrices of which only
the strict upper triangle is read; :func:`to_upper`, :func:`from_upper` and
:func:`edge_list` convert between that layout, the vector of the ``n(n-1)/2``
edges ``(i, j)``, ``i < j`` in row-major order, and the edge list itself.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._arborescence_marginals import arborescence_marginals
from ._laplacian import _drop, _in_laplacian
from ._matrix_tree import (
    arborescence_log_partition,
    relabel,
    rooted_symmetric,
    spanning_tree_log_partition,
)
from ._structure import Structure
from ._trace_arborescence import ArborescenceTracing
from ._trace_tree import SpanningTreeTracing
from ._tree_marginals import spanning_tree_marginals
from ._utils import dot, relaxation_input
from ._wilson import sample_arborescences
from .checks import check_int, check_max_range, check_tensor, square_size

__all__ = [
    "ArborescenceStructure",
    "SpanningTreeStructure",
    "edge_list",
    "from_upper",
    "to_upper",
]


def edge_list(n: int, *, device: Any = None) -> Tensor:
    """The ``[n(n-1)/2, 2]`` edges ``(i, j)``, ``i < j``, in row-major order (int64)."""
    n = check_int(n, "n", 0, 100_000)
    return torch.triu_indices(n, n, 1, device=device).T.contiguous()


def to_upper(matrix: Tensor) -> Tensor:
    """``[..., n, n]`` → ``[..., n(n-1)/2]``: the strict upper triangle, row-major."""
    n = square_size(matrix, "matrix", min_size=0)
    rows, cols = torch.triu_indices(n, n, 1, device=matrix.device)
    return matrix[..., rows, cols]


def from_upper(vector: Tensor, *, diagonal: float = 0.0) -> Tensor:
    """``[..., n(n-1)/2]`` → the symmetric ``[..., n, n]`` with ``diagonal`` on the diagonal.

    Raises:
        ValueError: if the last size is not a triangular number ``n(n-1)/2``, ``n >= 2``.
    """
    check_tensor(vector, "vector")
    m = vector.shape[-1] if vector.dim() else -1
    n = (1 + math.isqrt(1 + 8 * m)) // 2 if m >= 0 else 0
    if n < 2 or n * (n - 1) // 2 != m:
        raise ValueError(f"vector: last size {m} is not n(n-1)/2 for an n >= 2")
    rows, cols = torch.triu_indices(n, n, 1, device=vector.device)
    flat = vector.new_zeros((*vector.shape[:-1], n * n)).index_copy(-1, rows * n + cols, vector)
    upper = flat.unflatten(-1, (n, n))
    eye = torch.eye(n, dtype=vector.dtype, device=vector.device)
    return upper + upper.transpose(-1, -2) + diagonal * eye


class SpanningTreeStructure(SpanningTreeTracing, Structure):
    """Spanning trees of the complete graph ``K_n`` as symmetric adjacencies ``[..., n, n]``."""

    name = "spanning_tree"
    event_dim = 2
    option_names = ("lengths",)
    defaults: ClassVar[dict[str, Any]] = {"lengths": None}
    symmetric = True
    square = True
    min_size = 2

    edge_list = staticmethod(edge_list)
    to_upper = staticmethod(to_upper)
    from_upper = staticmethod(from_upper)
    #: The spanning-tree polytope has one constraint per vertex subset.
    max_polytope_size: ClassVar[int] = 8

    def flatten(self, scores: Tensor) -> Tensor:
        return to_upper(scores)

    def unflatten(self, x: Tensor, event_shape: Any) -> Tensor:
        return from_upper(x)

    def polytope(self, n: int, **options: Any) -> tuple[np.ndarray, ...]:
        """Edmonds' description of the spanning-tree polytope.

        ``Σ x = n - 1`` and ``Σ_{e ⊆ S} x_e <= |S| - 1`` for every vertex subset
        ``2 <= |S| < n`` (exponentially many, so ``n <= 8``).
        """
        self.options(options)
        if n > self.max_polytope_size:
            raise ValueError(
                f"spanning_tree polytope is exponential; n <= {self.max_polytope_size}"
            )
        edges = list(itertools.combinations(range(n), 2))
        rows, bounds = [], []
        for size in range(2, n):
            for subset in itertools.combinations(range(n), size):
                rows.append([float(i in subset and j in subset) for i, j in edges])
                bounds.append(size - 1.0)
        a_ub = np.array(rows).reshape(len(rows), len(edges))
        return np.ones((1, len(edges))), np.array([n - 1.0]), a_ub, np.array(bounds)

    relax_option_names = ("max_range",)  # the Matrix-Tree relaxation's clip range
    relax_option_checks: ClassVar[dict[str, Any]] = {"max_range": check_max_range}
    relax_per_entry_tau = True  # _relax divides the scores as they are

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        self.lengths_mask(scores, opts["lengths"])

    def _relax(self, scores: Tensor, tau: Tensor, **opts: Any) -> Tensor:
        return spanning_tree_marginals(
            relaxation_input(scores, tau), lengths=opts["lengths"], max_range=opts.get("max_range")
        )

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.max_spanning_tree(scores, lengths=opts["lengths"])
        return out

    def enumerate(self, n: int, **options: Any) -> Tensor:
        self.options(options)
        return torch.from_numpy(solvers.enumerate_spanning_trees(n))

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        inside = self.lengths_mask(scores, opts["lengths"])
        return spanning_tree_log_partition(scores, inside=inside)

    def _edges(self, scores: Tensor, lengths: Any) -> Tensor:
        """``[..., n, n]`` True on the upper-triangle edges inside each graph."""
        n = scores.shape[-1]
        mask = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
        inside = self.lengths_mask(scores, lengths)
        return mask if inside is None else mask & inside[..., :, None] & inside[..., None, :]

    def score(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        edges = self._edges(scores, opts.get("lengths"))
        return dot(torch.where(edges, scores, 0.0), torch.where(edges, x, 0.0), 2)

    def _contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """Symmetric adjacencies of spanning trees of each graph (nothing past a length)."""
        edges = self._edges(scores, opts.get("lengths"))
        shape = torch.broadcast_shapes(x.shape, edges.shape)
        x, edges = x.expand(shape), edges.expand(shape)
        # A tree's adjacency is symmetric with a zero diagonal: the count reads its
        # upper triangle, the rest must mirror it (not merely be ignored).
        outside = ~(edges | edges.transpose(-1, -2))
        symmetric = (x == x.transpose(-1, -2)).all(dim=(-2, -1))
        return symmetric & _is_tree(x, edges, outside, opts, directed=False)

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        # An undirected tree is one arborescence with symmetric weights, rooted
        # at any vertex: at an endpoint of the heaviest edge (moved to 0), so
        # that walks reach the root and the conditioning fallback measures from
        # the heaviest cluster (a root reached only by -1e20 edges lost the
        # shares of those edges to rounding).
        inside = self.lengths_mask(scores, opts["lengths"])
        sym, inside, perm = rooted_symmetric(scores, inside)
        adjacency = _sample_graphs(sym, 0, inside, shape, generator)
        return relabel(adjacency + adjacency.transpose(-1, -2), perm)


class ArborescenceStructure(ArborescenceTracing, Structure):
    """Arborescences rooted at ``root``: ``[..., n, n]``, ``[i, j] = 1`` for the edge ``i → j``."""

    name = "arborescence"
    event_dim = 2
    option_names = ("root", "lengths")
    defaults: ClassVar[dict[str, Any]] = {"root": 0, "lengths": None}
    square = True
    min_size = 2

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        n = scores.shape[-1]
        opts["root"] = check_int(opts["root"], "root", 0, n - 1)
        # Every graph must contain its root: lengths start at root + 1.
        self.lengths_mask(scores, opts["lengths"], root=opts["root"])

    relax_option_names = ("max_range",)  # the Matrix-Tree relaxation's clip range
    relax_option_checks: ClassVar[dict[str, Any]] = {"max_range": check_max_range}
    relax_per_entry_tau = True  # _relax divides the scores as they are

    def _relax(self, scores: Tensor, tau: Tensor, **opts: Any) -> Tensor:
        return arborescence_marginals(
            relaxation_input(scores, tau),
            root=opts["root"],
            lengths=opts["lengths"],
            max_range=opts.get("max_range"),
        )

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        out: Tensor = solvers.max_arborescence(scores, root=opts["root"], lengths=opts["lengths"])
        return out

    def enumerate(self, n: int, **options: Any) -> Tensor:
        root = self.options(options)["root"]
        return torch.from_numpy(solvers.enumerate_arborescences(n, root))

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        inside = self.lengths_mask(scores, opts["lengths"], root=opts["root"])
        return arborescence_log_partition(scores, root=opts["root"], inside=inside)

    def score(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        n = scores.shape[-1]
        edges = ~torch.eye(n, dtype=torch.bool, device=scores.device)
        edges[:, opts.get("root", 0)] = False
        inside = self.lengths_mask(scores, opts.get("lengths"), root=opts.get("root", 0))
        if inside is not None:
            edges = edges & inside[..., :, None] & inside[..., None, :]
        return dot(torch.where(edges, scores, 0.0), torch.where(edges, x, 0.0), 2)

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        inside = self.lengths_mask(scores, opts["lengths"], root=opts["root"])
        return _sample_graphs(scores, opts["root"], inside, shape, generator)

    def _contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """Arborescences rooted at ``root`` of each graph (no edge past a length)."""
        n = x.shape[-1]
        root = opts.get("root", 0)
        edges = ~torch.eye(n, dtype=torch.bool, device=x.device)
        edges[:, root] = False
        inside = self.lengths_mask(scores, opts.get("lengths"), root=root)
        if inside is not None:
            edges = edges & inside[..., :, None] & inside[..., None, :]
        shape = torch.broadcast_shapes(x.shape, edges.shape)
        x, edges = x.expand(shape), edges.expand(shape)
        return _is_tree(x, edges, ~edges, opts, directed=True)


def _is_tree(
    x: Tensor,
    edges: Tensor,
    outside: Tensor,
    opts: dict[str, Any],
    *,
    directed: bool,
) -> Tensor:
    """``[*sample, ...]``: ``x`` is 0/1, empty on ``outside`` and a tree of its graph.

    A 0/1 ``x`` with ``size − 1`` edges is a spanning tree (arborescence) exactly
    when it contains one, i.e. when the Matrix-Tree count of the graph ``x`` (the
    determinant of its Laplacian minor, an integer) is 1 rather than 0: one
    batched determinant on ``x``'s device.
    """
    n = x.shape[-1]
    root = opts.get("root", 0)
    lengths = opts.get("lengths")
    size = torch.full(x.shape[:-2], n, device=x.device)
    if lengths is not None:
        size = torch.as_tensor(lengths, device=x.device).expand(x.shape[:-2])
    used = torch.where(edges, x, torch.zeros_like(x))
    ok = ((x == 0) | (x == 1)).all(dim=(-2, -1)) & ~(outside & (x != 0)).any((-2, -1))
    ok = ok & (used.sum((-2, -1)) == size - 1)
    w = used.detach().to(torch.float64)
    if not directed:
        w = w + w.transpose(-1, -2)
    vertex = torch.arange(n, device=x.device)
    removed = (vertex >= size.unsqueeze(-1)) | (vertex == root)  # [..., n]
    # The root and padding vertices become identity rows: the minor's determinant
    # of the in-degree Laplacian (undirected: the Laplacian).
    lap = _drop(_in_laplacian(w), removed, 1.0)
    count = torch.linalg.det(lap) if lap.numel() else lap.new_zeros(lap.shape[:-2])
    return ok & ((count - 1).abs() < 0.5)


def _sample_graphs(
    scores: Tensor,
    root: int,
    inside: Tensor | None,
    shape: torch.Size,
    generator: torch.Generator | None,
) -> Tensor:
    """Wilson samples ``[*shape, ..., n, n]`` of arborescences of the batch ``[..., n, n]``."""
    n = scores.shape[-1]
    batch = scores.shape[:-2]
    flat = scores.reshape(-1, n, n)
    flat_inside = None if inside is None else inside.reshape(-1, n)
    out = sample_arborescences(flat, root, flat_inside, math.prod(shape), generator=generator)
    return out.reshape(*shape, *batch, n, n)
