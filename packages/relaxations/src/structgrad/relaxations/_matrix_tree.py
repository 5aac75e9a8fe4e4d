"""Exact edge marginals of exponential families over spanning trees and arborescences.

Kirchhoff's Matrix-Tree theorem gives the partition function as a determinant
of a Laplacian minor; the marginals ``∂ log Z / ∂ θ`` are closed-form in its
inverse. Everything is batched torch, log-potentials are max-shifted before
``exp``, and the backward pass is closed-form (see ``_laplacian``).

References:
    Koo, Globerson, Carreras and Collins, "Structured Prediction Models via the
    Matrix-Tree Theorem", EMNLP 2007.
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (App. D.2: range clipping).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._arborescence_clip import dual_clip
from ._laplacian import directed_marginals
from ._tree_clip import bottleneck_clip
from ._utils import check_square, default_max_range

__all__ = [
    "arborescence_marginals",
    "multi_root_arborescence_marginals",
    "spanning_tree_marginals",
]


def _vertex_mask(
    lengths: Tensor | None, batch: tuple[int, ...], n: int, like: Tensor
) -> tuple[Tensor, Tensor | None]:
    """``[..., n]`` boolean mask of the vertices inside each graph, and the ``[...]`` lengths."""
    idx = torch.arange(n, device=like.device)
    if lengths is None:
        return torch.ones((*batch, n), dtype=torch.bool, device=like.device), None
    lens = torch.as_tensor(lengths, device=like.device)
    if lens.is_floating_point() or lens.dtype == torch.bool:
        raise ValueError(f"lengths must hold integers, got {lens.dtype}")
    try:
        lens = lens.expand(batch)
    except RuntimeError:
        raise ValueError(
            f"lengths of shape {tuple(lens.shape)} do not match batch {batch}"
        ) from None
    if (lens < 1).any() or (lens > n).any():
        raise ValueError(f"lengths must lie in [1, {n}]")
    return idx < lens.unsqueeze(-1), lens


def _inverse(matrix: Tensor, what: str) -> Tensor:
    inv, info = torch.linalg.inv_ex(matrix)
    if (info != 0).any():
        raise ValueError(f"{what}: the finite-score edges do not connect every graph")
    return inv


def _check_finite(out: Tensor, what: str) -> Tensor:
    # One reduction first: NaN or inf anywhere makes the per-graph sums non-finite
    # (marginals are bounded by 1, so the sums cannot overflow).
    if not torch.isfinite(out.sum(dim=(-2, -1))).all():
        raise ValueError(f"{what}: the finite-score edges do not connect every graph")
    return out


def spanning_tree_marginals(
    scores: Tensor, *, lengths: Tensor | None = None, max_range: float | None = None
) -> Tensor:
    """Edge marginals of ``p(T) ∝ exp(Σ_{e∈T} θ_e)`` over spanning trees of ``K_n``.

    Only the strict upper triangle of ``scores`` is read (as by
    :func:`structgrad.solvers.max_spanning_tree`); the result is symmetric with a
    zero diagonal, and its upper triangle sums to ``n - 1``.

    Args:
        scores: ``[..., n, n]`` edge log-potentials; ``-inf`` forbids an edge.
        lengths: optional ``[...]`` integer graph sizes; vertices past a length
            are not in the graph and get marginal 0.
        max_range: the range ``R`` of the clipping that keeps the Laplacian
            well conditioned (the computation runs in float64 for every dtype):
            edges of the maximum spanning tree are raised to ``max - R`` and other
            edges to ``R`` below their bottleneck on that tree, which keeps the
            ``τ → 0`` limit (see ``_tree_clip``). Scores already within these
            floors are exact. ``None``: 15; ``math.inf``: no clipping.

    Returns:
        ``[..., n, n]`` marginals, same dtype and device as ``scores``.

    Raises:
        ValueError: on NaN or +inf scores, a non-square input, ``n < 2``, bad
            lengths, or forbidden edges that disconnect a graph.
    """
    n = check_square(scores)
    out_dtype, scores = scores.dtype, scores.to(torch.float64)  # see `max_range`
    batch = tuple(scores.shape[:-2])
    upper = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    inside, lens = _vertex_mask(lengths, batch, n, scores)
    pair = upper & inside.unsqueeze(-1) & inside.unsqueeze(-2)
    w = torch.where(pair, scores, torch.full_like(scores, -torch.inf))
    limit = _range_limit(max_range, "spanning_tree")
    if limit < math.inf and _spread(w) > limit:
        w = bottleneck_clip(w, pair.expand(w.shape), lens, limit)
    # Max shift: exp(w - c) <= 1; the shift only rescales Z, not the marginals.
    top = w.amax(dim=(-2, -1), keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    upper_a = w - top
    # Both directions of an edge carry its potential: the in-degree Laplacian of
    # this symmetric graph is the undirected one, and the edge marginal is the
    # sum of the two directed marginals (exactly symmetric in floating point).
    sym = torch.where(upper, upper_a, upper_a.transpose(-1, -2))
    # Deleting vertex 0 (Kirchhoff); vertices outside the graph are deleted too.
    removed = ~inside
    removed[..., 0] = True
    directed = directed_marginals(sym, removed)
    return _check_finite(directed + directed.transpose(-1, -2), "spanning_tree_marginals").to(
        out_dtype
    )


def _spread(w: Tensor) -> float:
    """Largest (max - min) of the finite entries of any graph in the batch."""
    # Scores were checked: the only non-finite entries are -inf.
    hi = w.amax(dim=(-2, -1))
    lo = w.masked_fill(w == -torch.inf, torch.inf).amin(dim=(-2, -1))
    gap = torch.where(torch.isfinite(hi), hi - lo, torch.zeros_like(hi))
    return float(gap.max().detach()) if gap.numel() else 0.0


def _range_limit(max_range: float | None, structure: str) -> float:
    limit = default_max_range(structure) if max_range is None else float(max_range)
    if not limit > 0:
        raise ValueError(f"max_range must be positive, got {max_range!r}")
    return limit


def _column_spread_exceeds(w: Tensor, limit: float) -> bool:
    """Whether any column of ``w`` ``[..., m, n]`` spreads more than ``limit`` (finite part)."""
    if limit == math.inf:
        return False
    hi = w.amax(dim=-2)
    lo = w.masked_fill(torch.isneginf(w), torch.inf).amin(dim=-2)
    return bool(((hi - lo) > limit).any())


def _directed(
    scores: Tensor,
    root_weight: Tensor | None,
    root: int,
    inside: Tensor,
    max_range: float | None,
    lengths: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    n = scores.shape[-1]
    limit = _range_limit(max_range, "arborescence")
    off = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    pair = off & inside.unsqueeze(-1) & inside.unsqueeze(-2)
    if root_weight is None:
        pair = pair & (torch.arange(n, device=scores.device) != root)  # nothing enters the root
    w = torch.where(pair, scores, torch.full_like(scores, -torch.inf))
    if root_weight is None:
        stacked = dual_clip(w, lengths, root, limit) if _column_spread_exceeds(w, limit) else w
    else:
        stacked = torch.cat([w, root_weight.unsqueeze(-2)], dim=-2)  # [..., n + 1, n]
        if _column_spread_exceeds(stacked, limit):
            # The virtual root as vertex 0 of an (n + 1)-vertex graph.
            big = torch.cat([root_weight.unsqueeze(-2), w], dim=-2)
            big = torch.cat([torch.full_like(big[..., :1], -torch.inf), big], dim=-1)
            big = dual_clip(big, None if lengths is None else lengths + 1, 0, limit)
            stacked = torch.cat([big[..., 1:, 1:], big[..., :1, 1:]], dim=-2)
    # Scaling all in-edges of one vertex by a constant scales every arborescence
    # alike: the per-column max shift leaves the marginals exact.
    top = stacked.amax(dim=-2, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    removed = ~inside
    if root_weight is None:
        removed = removed.clone()
        removed[..., root] = True
    mu = directed_marginals(stacked - top, removed)
    return mu[..., :n, :], None if root_weight is None else mu[..., n, :]


def arborescence_marginals(
    scores: Tensor,
    *,
    root: int = 0,
    lengths: Tensor | None = None,
    max_range: float | None = None,
) -> Tensor:
    """Edge marginals of ``p(A) ∝ exp(Σ_{(i→j)∈A} θ_ij)`` over arborescences rooted at ``root``.

    The directed Matrix-Tree theorem (Tutte; Koo et al. 2007) on the
    in-degree Laplacian with the root's row and column removed.

    Args:
        scores: ``[..., n, n]`` log-potentials, ``[i, j]`` for the edge ``i → j``;
            the diagonal and the edges into the root are ignored; ``-inf`` forbids.
        root: the root vertex in ``[0, n)``.
        lengths: optional ``[...]`` integer graph sizes in ``[root + 1, n]``.
        max_range: the range ``R`` of the clip that keeps the Laplacian well
            conditioned (float64 for every dtype): Edmonds' dual of the maximum
            arborescence is clipped so that it stays the MAP and every other
            arborescence sits at most ``R`` per nested cycle chain below it (see
            ``_arborescence_clip``); the ``τ → 0`` limit is the maximum
            arborescence up to ``O(n² e^{-R/depth})``. Columns spreading less
            than ``R`` are exact. ``None``: 20; ``math.inf``: no clipping.

    Returns:
        ``[..., n, n]`` marginals: every non-root column sums to 1.

    Raises:
        ValueError: on bad input or forbidden edges that leave a vertex unreachable.
    """
    n = check_square(scores)
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < n:
        raise ValueError(f"root must be an integer in [0, {n}), got {root!r}")
    inside, lens = _vertex_mask(lengths, tuple(scores.shape[:-2]), n, scores)
    if not inside[..., root].all():
        raise ValueError("every length must exceed the root")
    marginals, _ = _directed(scores.to(torch.float64), None, root, inside, max_range, lens)
    return _check_finite(marginals, "arborescence_marginals").to(scores.dtype)


def multi_root_arborescence_marginals(
    scores: Tensor,
    root_scores: Tensor,
    *,
    lengths: Tensor | None = None,
    max_range: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Marginals over spanning forests of arborescences, any vertex may be a root.

    Equivalently, arborescences of the graph with an extra virtual root whose
    edge to ``j`` has log-potential ``root_scores[j]`` (the non-projective
    dependency-parsing model with several words allowed under the root).

    Args:
        scores: ``[..., n, n]`` log-potentials of the edges ``i → j``.
        root_scores: ``[..., n]`` log-potentials of ``j`` being a root.
        lengths: optional ``[...]`` integer graph sizes in ``[1, n]``.
        max_range: as in :func:`arborescence_marginals`.

    Returns:
        ``(edge_marginals [..., n, n], root_marginals [..., n])``; for every
        vertex its in-marginals plus its root marginal sum to 1.
    """
    n = check_square(scores)
    if root_scores.shape != scores.shape[:-1]:
        want, got = tuple(scores.shape[:-1]), tuple(root_scores.shape)
        raise ValueError(f"root_scores must have shape {want}, got {got}")
    inside, lens = _vertex_mask(lengths, tuple(scores.shape[:-2]), n, scores)
    rw = torch.where(inside, root_scores, torch.full_like(root_scores, -torch.inf))
    marginals, roots = _directed(
        scores.to(torch.float64), rw.to(torch.float64), -1, inside, max_range, lens
    )
    assert roots is not None
    dtype = scores.dtype
    return _check_finite(marginals, "multi_root").to(dtype), _check_finite(roots, "multi_root").to(
        dtype
    )
