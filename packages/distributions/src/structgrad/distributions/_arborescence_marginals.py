"""Exact edge marginals of exponential families over arborescences.

The directed Matrix-Tree theorem (Tutte; Koo et al. 2007): the partition
function is a determinant of a minor of the in-degree Laplacian, and the
marginals ``∂ log Z / ∂ θ`` are closed-form in its inverse. Everything is
batched torch, log-potentials are max-shifted before ``exp``, and the backward
pass is closed-form (see ``_laplacian``).

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
from ._conditioning import check_reachable, checked, deviation_from, one_hot, vertex_mask
from ._laplacian import Removed, directed_marginals
from ._matrix_tree import eliminated_marginals
from ._numerics import (
    FLOAT32_SPREAD,
    default_max_range,
    finite_min,
    range_limit,
    tracing,
    work_dtype,
)
from .checks import check_int, check_tensor, check_values, square_size, validation_enabled

__all__ = ["arborescence_marginals", "multi_root_arborescence_marginals"]


def _mark_non_edges(t: Tensor, root: int | None, inside: Tensor | None, value: float) -> None:
    """Write ``value`` into the entries of ``t`` ``[..., m, n]`` that are not edges, in place.

    The diagonal (self-loops), column ``root`` (if not ``None``: nothing enters
    the root), and the rows and columns of vertices outside ``inside`` ``[..., n]``.
    """
    n = t.shape[-1]
    t[..., :n, :].diagonal(dim1=-2, dim2=-1).fill_(value)
    if root is not None:
        t[..., root] = value
    if inside is not None:
        outside = ~inside
        t.masked_fill_(outside.unsqueeze(-2), value)  # edges into them
        t[..., :n, :].masked_fill_(outside.unsqueeze(-1), value)  # edges out of them


def _edges_and_range(
    w: Tensor, root: int | None, inside: Tensor | None, certain: float
) -> tuple[Tensor, float, bool]:
    """Mark the non-edges of ``w`` ``[..., m, n]`` ``-inf``; a shift for its columns, their spread.

    The spread is the largest (max - min finite) of any column: exact, or an
    upper bound when that bound is at most ``certain`` (every decision taken
    below ``certain`` is then the same). The shift is then the global maximum
    (every entry lies within ``certain`` nats below it), else the ``[..., 1, n]``
    column maxima (0 for a column without a finite entry). The flag tells
    whether some edge is ``-inf`` (forbidden).

    Raises:
        ValueError: if an edge is NaN or ``+inf``.
    """
    n = w.shape[-1]
    if not w.numel():  # an empty batch
        return w.new_zeros(()), 0.0, False
    if tracing(w):  # nothing is read: the exact path's shift, an unbounded spread
        _mark_non_edges(w, root, inside, -torch.inf)
        return torch.nan_to_num(w.amax(dim=-2, keepdim=True), neginf=0.0), math.inf, False
    # Fast path: the global (max - min), taken before the non-edges are marked,
    # bounds every column's spread in one reduction; it is not finite on NaN,
    # +inf or -inf entries (even in non-edges), which take the exact path below.
    lo, hi = torch.aminmax(w)
    bound = float(hi - lo)
    forbidden = not bool(lo > -torch.inf)  # NaN too: it may hide a -inf
    if forbidden:  # some -inf: is it an edge?
        neg = torch.isneginf(w)
        _mark_non_edges(neg, root, inside, False)
        forbidden = bool(neg.any())
    _mark_non_edges(w, root, inside, -torch.inf)
    if bound <= certain:
        return hi, bound, False
    top = w.amax(dim=-2, keepdim=True)
    check_values(w[..., :n, :])
    check_values(w[..., n:, :], "root_scores")
    # -inf for a column of -inf (top = -inf, lo = inf)
    spread = float((top - finite_min(w, -2).unsqueeze(-2)).max())
    return torch.nan_to_num(top, neginf=0.0), spread, forbidden


def _eliminated(
    scores: Tensor, root_weight: Tensor | None, root: int, inside: Tensor | None
) -> tuple[Tensor, Tensor]:
    """:func:`_directed`'s marginals by the log-space elimination (exact at any spread)."""
    if root_weight is None:
        return eliminated_marginals(scores, root=root, inside=inside), scores.new_zeros(0)
    # Several roots: arborescences of a virtual root 0 whose edges are root_weight.
    top = torch.cat([scores.new_full((*scores.shape[:-2], 1), -math.inf), root_weight], dim=-1)
    side = scores.new_full((*scores.shape[:-1], 1), -math.inf)
    big = torch.cat([top.unsqueeze(-2), torch.cat([side, scores], dim=-1)], dim=-2)
    if inside is not None:
        inside = torch.cat([inside.new_ones((*inside.shape[:-1], 1)), inside], dim=-1)
    mu = eliminated_marginals(big, root=0, inside=inside)
    return mu[..., 1:, 1:], mu[..., 0, 1:]


def _directed(
    scores: Tensor,
    root_weight: Tensor | None,
    root: int,
    lengths: Tensor | None,
    max_range: float | None,
) -> tuple[Tensor, Tensor]:
    """Marginals ``(edges [..., n, n], root [..., n])`` (single root: ``root`` is empty).

    Reads neither the diagonal of ``scores`` nor (single root) its column ``root``.
    """
    n = scores.shape[-1]
    limit = range_limit(max_range, directed=True)
    inside, lens = vertex_mask(lengths, tuple(scores.shape[:-2]), n, scores)
    if root_weight is None:
        if inside is not None and validation_enabled() and not inside[..., root].all():
            raise ValueError("every length must exceed the root")
        w = scores.clone()
    else:
        rows = root_weight.to(scores.dtype).unsqueeze(-2)
        w = torch.cat([scores, rows], dim=-2)  # [..., n + 1, n]
    # The global shift of the fast path must not underflow an edge: it takes
    # spreads within the float32 budget, or (float64) within the default range.
    default = default_max_range(directed=True)
    safe = FLOAT32_SPREAD if scores.dtype == torch.float32 else default
    certain = min(limit, safe)
    one_root = root if root_weight is None else None
    # Non-edges become -inf in place, under autograd's radar: their weight is
    # 0, so the marginals give them zero gradient anyway.
    shift, spread, forbidden = _edges_and_range(w.detach(), one_root, inside, certain)
    what = "arborescence_marginals" if root_weight is None else "multi_root_arborescence_marginals"
    indirect = False  # some vertex has no finite edge from the root
    if forbidden:
        finite = torch.isfinite(w.detach())
        direct = finite[..., n if root_weight is not None else root, :]
        need = direct.new_ones(direct.shape) if inside is None else inside.clone()
        if root_weight is None:
            need[..., root] = False
        indirect = bool((need & ~direct).any())
    if indirect:  # forbidden edges may cut vertices off
        sources = finite[..., n, :] if root_weight is not None else one_hot(root, n, w.device)
        check_reachable(finite[..., :n, :], sources, inside, what)
    # The columns' spreads bound the conditioning while every vertex has an
    # edge from the root (its weight is the margin of the Laplacian's column
    # dominance). Without one, nested cycles compound it (a chain of k cycles,
    # each a nats dear, costs about k a): Edmonds' dual sees the chains, and the
    # dual clip, exact while they stay within the range, runs.
    clip = max_range is not None and (spread > limit or (indirect and limit < math.inf))
    # The default is exact: past what the Laplacian keeps, or unread (traced),
    # the log-space elimination (the clip below serves an explicit range). So
    # is an explicit R above the default, on the clipped scores: the clip
    # bounds chains of cycles by R, more than the Laplacian holds (a 40-nat
    # clip made it singular, or off by up to 1).
    eliminate = (spread > default or indirect or tracing(w)) and (
        max_range is None or default < limit < math.inf
    )
    if eliminate and not clip:
        return _eliminated(scores, root_weight, root, inside)
    work = work_dtype(scores.dtype, limit if clip else spread)
    w = w.to(work)
    shift = shift.to(work)
    if clip:
        if root_weight is None:
            w = dual_clip(w, lens, root, limit)
        else:  # the virtual root as vertex 0 of an (n + 1)-vertex graph
            big = torch.cat([w[..., n:, :], w[..., :n, :]], dim=-2)
            big = torch.cat([torch.full_like(big[..., :1], -torch.inf), big], dim=-1)
            big = dual_clip(big, None if lens is None else lens + 1, 0, limit)
            w = torch.cat([big[..., 1:, 1:], big[..., :1, 1:]], dim=-2)
    if eliminate:
        return _eliminated(
            w[..., :n, :], None if root_weight is None else w[..., n, :], root, inside
        )
    # Scaling all in-edges of one vertex by a constant scales every arborescence
    # alike: a per-column max shift leaves the marginals exact (and the clip
    # never raises an entry above its column's maximum). Pivoting does not see
    # column scales, so a global shift is as accurate when it cannot underflow.
    removed: Removed = root if root_weight is None else None
    if inside is not None:
        removed = ~inside
        if root_weight is None:
            removed[..., root] = True

    def solve(dtype: torch.dtype) -> tuple[Tensor, ...]:
        return directed_marginals(w.to(dtype), removed, shift.to(dtype))

    def deviation(out: tuple[Tensor, ...]) -> float:
        # Every vertex but the root has in-marginals summing to 1 (0 outside).
        total = out[0].detach().sum(-2)  # [..., n]
        if root_weight is not None:
            total += out[1].detach()[..., 0, :]
        else:
            total[..., root] += 1.0
        if inside is not None:
            total += ~inside  # outside: 0 -> 1
        return deviation_from(total, 1.0)

    trusted = (limit if clip else spread) <= default
    edges, virtual = checked(solve, deviation, work, trusted, what)
    return edges, virtual.squeeze(-2)


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
        max_range: ``None`` (default): exact at any spread, by the Laplacian
            (float64, or float32 for float32 scores within 10 nats) while no
            column spreads 20 nats and every vertex has a finite edge from
            the root, else (and while tracing) by the gradient of the
            log-space elimination of ``log Z``. A number ``R``: clip
            Edmonds' dual of the maximum arborescence so that it stays the
            MAP and every other arborescence sits at most ``R`` per nested
            cycle chain below it (see ``_arborescence_clip``); the ``τ → 0``
            limit is the maximum arborescence up to ``O(n² e^{-R/depth})``.
            The clipped law's marginals come from the Laplacian for
            ``R <= 20`` (the clip bounds its conditioning), and for a larger
            ``R``, as by default, from the elimination wherever a column
            spreads more than 20 nats or a vertex has no finite edge from
            the root (exact: the clip leaves chains of up to ``R``). As for
            trees, a clipped entry's gradient goes to the maximum only (the
            clip's dual is not differentiated). ``math.inf``: the Laplacian,
            never clipped.

    Returns:
        ``[..., n, n]`` marginals: every non-root column sums to 1.

    Raises:
        ValueError: on bad input or forbidden edges that leave a vertex unreachable.
    """
    n = square_size(scores)
    root = check_int(root, "root", 0, n - 1)
    marginals, _ = _directed(scores, None, root, lengths, max_range)
    return marginals.to(scores.dtype)


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
        scores: ``[..., n, n]`` log-potentials of the edges ``i → j``; the
            diagonal is not read, so torch-struct's layout (root scores on the
            diagonal) can be passed as it is, with its diagonal as ``root_scores``.
        root_scores: ``[..., n]`` log-potentials of ``j`` being a root.
        lengths: optional ``[...]`` integer graph sizes in ``[1, n]``.
        max_range: as in :func:`arborescence_marginals` (the root scores count
            as the edges of a virtual root).

    Returns:
        ``(edge_marginals [..., n, n], root_marginals [..., n])``; for every
        vertex its in-marginals plus its root marginal sum to 1.
    """
    square_size(scores, min_size=1)  # one vertex: its root edge, probability 1
    check_tensor(root_scores, "root_scores")
    if root_scores.shape != scores.shape[:-1]:
        want, got = tuple(scores.shape[:-1]), tuple(root_scores.shape)
        raise ValueError(f"root_scores must have shape {want}, got {got}")
    if not root_scores.is_floating_point():
        raise ValueError(f"root_scores must be a floating-point tensor, got {root_scores.dtype}")
    edges, roots = _directed(scores, root_scores, -1, lengths, max_range)
    return edges.to(scores.dtype), roots.to(scores.dtype)
