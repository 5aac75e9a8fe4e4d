"""Exact edge marginals of an exponential family over spanning trees.

Kirchhoff's Matrix-Tree theorem gives the partition function as a determinant
of a Laplacian minor; the marginals ``∂ log Z / ∂ θ`` are closed-form in its
inverse. Everything is batched torch, log-potentials are max-shifted before
``exp``, and the backward pass is closed-form (see ``_laplacian``). The
arborescence marginals are in ``_arborescence_marginals``.

References:
    Koo, Globerson, Carreras and Collins, "Structured Prediction Models via the
    Matrix-Tree Theorem", EMNLP 2007.
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (App. D.2: range clipping).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._conditioning import check_reachable, checked, deviation_from, one_hot, vertex_mask
from ._laplacian import Removed, undirected_marginals
from ._matrix_tree import eliminated_marginals
from ._numerics import default_max_range, hi_and_spread, range_limit, tracing, work_dtype
from ._tree_clip import bottleneck_clip
from .checks import check_values, square_size

__all__ = ["spanning_tree_marginals"]


def _removed_vertices(
    heavy: Tensor | None, inside: Tensor | None, n: int, batch: tuple[int, ...], device: Any
) -> Removed:
    """The ``[..., n]`` vertices to delete: ``heavy`` and those outside the graph."""
    if heavy is None:
        return 0
    mask = torch.zeros(*batch, n, dtype=torch.bool, device=device)
    mask.scatter_(-1, heavy.unsqueeze(-1), True)
    return mask if inside is None else mask | ~inside


def spanning_tree_marginals(
    scores: Tensor, *, lengths: Tensor | None = None, max_range: float | None = None
) -> Tensor:
    """Edge marginals of ``p(T) ∝ exp(Σ_{e∈T} θ_e)`` over spanning trees of ``K_n``.

    Only the strict upper triangle of ``scores`` is read (as by
    :func:`structgrad.solvers.max_spanning_tree`), and not past a length; the
    result is symmetric with a zero diagonal, and its upper triangle sums to
    ``n - 1``.

    Args:
        scores: ``[..., n, n]`` edge log-potentials; ``-inf`` forbids an edge.
        lengths: optional ``[...]`` integer graph sizes; vertices past a length
            are not in the graph and get marginal 0.
        max_range: ``None`` (default): exact at any spread, by the Laplacian
            (float64, or float32 for float32 scores spreading at most 10 nats)
            while the scores spread at most 15 nats, else (and while tracing)
            by the gradient of the log-space elimination of ``log Z``. A
            number ``R``: clip as the reference SST code does (``R = 15``)
            when the scores spread more than ``R``: edges of the maximum
            spanning tree are raised to ``max - R`` and other edges to ``R``
            below their bottleneck on that tree, which keeps the ``τ → 0``
            limit (see ``_tree_clip``) but not the exact law. The clipped
            law's marginals come from the Laplacian for ``R <= 15`` (the
            clip bounds its conditioning), and for a larger ``R``, as by
            default, from the elimination wherever the scores spread more
            than 15 nats (exact: the clipped scores still spread up to ``2R``).
            A clipped entry's gradient goes to the maximum only (its floor's
            dependence on the bottleneck edge is not differentiated), so
            gradcheck fails there; the default is exact. ``math.inf``: the
            Laplacian, never clipped.

    Returns:
        ``[..., n, n]`` marginals, same dtype and device as ``scores``.

    Raises:
        ValueError: on NaN or +inf scores (among those read), a non-square
            input, ``n < 2``, bad lengths, or forbidden edges that disconnect a
            graph.
    """
    n = square_size(scores)
    batch = tuple(scores.shape[:-2])
    inside, lens = vertex_mask(lengths, batch, n, scores)
    pair = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    if inside is not None:
        pair = pair & inside.unsqueeze(-1) & inside.unsqueeze(-2)
    x: Tensor = scores
    if inside is not None:
        x = torch.where(pair, x, torch.full_like(x, -torch.inf))
    rows, cols = torch.triu_indices(n, n, 1, device=scores.device)
    edges = x.detach()[..., rows, cols]  # only the edges are read
    # Kirchhoff: any vertex may be deleted. Deleting an endpoint of the heaviest
    # edge (as the reference does) measures every potential from the heaviest
    # cluster, which keeps the inverse's entries, and the cancellations of the
    # marginals and their backward, small when the scores spread widely.
    # (take: a 0-dim index of one graph would be read on the host, a graph break)
    heavy = torch.take(rows, edges.argmax(-1)) if edges.numel() else None
    removed: Removed = _removed_vertices(heavy, inside, n, batch, scores.device)
    if check_values(edges):  # forbidden edges may cut vertices off
        finite = torch.isfinite(x.detach()) & pair
        adjacency = finite | finite.transpose(-1, -2)
        check_reachable(adjacency, one_hot(0, n, x.device), inside, "spanning_tree_marginals")
    hi, spread = hi_and_spread(edges)
    limit = range_limit(max_range, directed=False)
    default = default_max_range(directed=False)
    # An explicit max_range R clips beyond R, as the reference does.
    clip = max_range is not None and limit < math.inf and spread > limit
    # The default is exact: past 15 nats (clusters joined by edges 29 nats
    # lighter cost the float64 Laplacian 2e-4), or unread (traced), the
    # log-space elimination. So is an explicit R above the default, on the
    # clipped scores: its clip leaves up to 2R, and tree edges R apart (the
    # Laplacian of a 40-nat clip was singular).
    eliminate = (spread > default or tracing(edges)) and (
        max_range is None or default < limit < math.inf
    )
    if eliminate and not clip:
        return eliminated_marginals(x, root=None, inside=inside)
    work = work_dtype(scores.dtype, 2 * limit if clip else spread)
    x = x.to(work)
    if clip:
        if lens is None:  # the clip reads -inf off the upper triangle
            x = torch.where(pair, x, torch.full_like(x, -torch.inf))
        x = bottleneck_clip(x, pair.expand(x.shape), lens, limit)  # the maximum stays
    if eliminate:
        return eliminated_marginals(x, root=None, inside=inside).to(scores.dtype)
    # Max shift: exp(x - c) <= 1; the shift only rescales Z, not the marginals.
    shift = torch.where(torch.isfinite(hi), hi, torch.zeros_like(hi))[..., None, None]

    def solve(dtype: torch.dtype) -> tuple[Tensor, ...]:
        return (undirected_marginals(x.to(dtype), removed, shift.to(dtype)),)

    def deviation(out: tuple[Tensor, ...]) -> float:
        # A spanning tree has (size - 1) edges: twice that in the symmetric sum.
        total = out[0].detach().sum((-2, -1))  # [...]
        if lens is not None:
            total += 2 * (n - lens)  # every graph's sum to 2 (n - 1)
        return deviation_from(total, 2.0 * (n - 1)) / (2.0 * (n - 1))

    trusted = (2 * limit if clip else spread) <= 2 * default
    (out,) = checked(solve, deviation, work, trusted, "spanning_tree_marginals")
    return out.to(scores.dtype)
