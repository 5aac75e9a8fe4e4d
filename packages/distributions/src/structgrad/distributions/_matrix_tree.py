"""Log-partition functions over spanning trees and arborescences (Matrix-Tree theorem).

Kirchhoff: for log-potentials ``θ_ij`` of edges ``i → j`` and ``w = exp(θ)``,
the sum over arborescences rooted at ``r`` of ``Π w`` is the determinant of
the in-degree Laplacian ``L = diag(Σ_i w_ij) − W`` with row and column ``r``
deleted. An undirected spanning tree is the arborescence of its orientation
away from vertex 0, so symmetric weights give the undirected partition function.

Two exact ways to the determinant, chosen per call:

* ``logdet`` of the Laplacian minor in float64 after a per-column max shift
  (``θ_ij − c_j`` changes every arborescence by ``Σ_j c_j``: exact), when no
  edge is forbidden and every column spreads at most :data:`LOGDET_SPREAD` nats;
* otherwise Gaussian elimination carried out in log space: eliminating vertex
  ``v`` multiplies the determinant by its pivot ``d_v = Σ_a w_av`` and leaves
  the Laplacian of the graph with weights ``w_ab + w_av w_vb / d_v`` (the
  star-mesh transform), a sum of positive terms. No cancellation happens, so
  any spread (``±1e4`` logits) and any ``-inf`` edge is handled, at ``O(n)``
  sequential steps.

References:
    Kirchhoff, 1847; Tutte, "Graph Theory", 1984 (directed Matrix-Tree theorem).
    Koo, Globerson, Carreras and Collins, "Structured Prediction Models via the
    Matrix-Tree Theorem", EMNLP 2007.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._numerics import tracing
from ._utils import finite_shift, log_shifted, logsumexp

__all__ = [
    "LOGDET_SPREAD",
    "arborescence_log_partition",
    "eliminated_marginals",
    "relabel",
    "rooted_symmetric",
    "spanning_tree_log_partition",
]

#: Largest per-column spread (nats) of the finite edges for which the float64
#: ``logdet`` path is used: every weight is then at least ``e^-10`` of its
#: column's largest, which bounds the Laplacian's conditioning.
LOGDET_SPREAD = 10.0


def _edge_mask(n: int, root: int, inside: Tensor | None, device: torch.device) -> Tensor:
    """``[..., n, n]`` True on the edges: no self-loop, nothing into ``root``, only inside."""
    mask = ~torch.eye(n, dtype=torch.bool, device=device)
    mask[:, root] = False
    if inside is not None:
        mask = mask & inside.unsqueeze(-1) & inside.unsqueeze(-2)
    return mask


def _column_shifted(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(x − c, Σ_j c_j)`` ``([..., n, n], [...])``: each column less its largest entry.

    Every vertex but the root has exactly one edge in, so the shift changes
    every arborescence's weight by the same ``Σ_j c_j``: an exact gauge. A
    column with no finite entry (the root's, padding) is shifted by 0, and a
    column spreading past float64's range keeps its far entries finite.
    """
    shift = finite_shift(x.amax(-2, keepdim=True))  # [..., 1, n]
    floor = torch.finfo(x.dtype).min
    shifted = torch.where(torch.isneginf(x), x, (x - shift).clamp_min(floor))
    return shifted, shift.sum((-2, -1))


def _logdet(x: Tensor, edges: Tensor, root: int, inside: Tensor | None) -> Tensor:
    """``log det`` of the Laplacian minor of ``x`` (non-edges ``-inf``, no ``-inf`` edge)."""
    n = x.shape[-1]
    # Per-column max shift: every column's largest weight is 1.
    shifted, total = _column_shifted(x)
    w = torch.exp(shifted)  # [..., n, n], 0 on non-edges
    lap = torch.diag_embed(w.sum(-2)) - w
    kept = torch.ones(n, dtype=torch.bool, device=x.device)
    kept[root] = False
    keep = kept if inside is None else kept & inside  # [..., n]
    both = keep.unsqueeze(-1) & keep.unsqueeze(-2)
    # Deleted rows and columns (root, padding) become identity rows: det unchanged.
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    lap = torch.where(both, lap, eye.expand_as(lap))
    return torch.logdet(lap) + total


def _logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(e^a + e^b)`` whose gradients are 0, not NaN, where both are ``-inf``."""
    # Two terms, so no stacked copy (this is the elimination's inner loop).
    top = finite_shift(torch.maximum(a, b))
    return log_shifted(torch.exp(a - top) + torch.exp(b - top), top)


def _greedy_order(x: Tensor, root: Tensor) -> Tensor:
    """``[..., n]`` vertices in the order a greedy tree grows from ``root`` ``[...]``.

    Each step adds the vertex with the heaviest edge from those already in
    (Prim's order on the detached log-potentials, ``x[i, j]`` for ``i → j``);
    vertices nothing reaches come last. No value is read on the host.
    """
    n = x.shape[-1]
    idx = root.unsqueeze(-1)  # [..., 1]
    taken = torch.zeros(x.shape[:-1], dtype=torch.bool, device=x.device).scatter(-1, idx, True)

    def row(v: Tensor) -> Tensor:  # x[..., v, :] for v [..., 1]
        return x.gather(-2, v.unsqueeze(-1).expand(*x.shape[:-2], 1, n)).squeeze(-2)

    best = row(idx)
    order = [root]
    unreached = torch.finfo(x.dtype).min  # ranks above the vertices taken
    for _ in range(n - 1):
        key = torch.where(taken, -math.inf, torch.where(torch.isneginf(best), unreached, best))
        v = key.argmax(-1, keepdim=True)  # [..., 1]
        order.append(v.squeeze(-1))
        taken = taken.scatter(-1, v, True)
        best = torch.maximum(best, row(v))
    return torch.stack(order, -1)


def _eliminate(x: Tensor, root: Tensor, inside: Tensor | None) -> Tensor:
    """``log det`` of the Laplacian minor by log-space Gaussian elimination (star-mesh).

    ``x`` has its root's column at ``-inf``; ``root`` ``[...]`` is that vertex.
    The vertices are relabelled in a greedy tree's order from the root
    (relabelling changes no arborescence's weight) and eliminated from the
    last, so each step works on the leading ``v × v`` block (``Σ v² ≈ n³/3``
    entries in all, not ``n³``), and the weakly attached vertices go first:
    a hub eliminated before its leaves, or a vertex reached only by ``-1e20``
    edges eliminated last, added O(1) terms to 1e16-scale ones, whose digits
    are lost (ties far below the top lost their shares).

    Each column is first shifted by its largest entry (:func:`_column_shifted`,
    as in :func:`_logdet`): edges at ``-1e20`` or ``1e16`` become differences
    of order one (tied edges into a vertex reached only at ``-1e20`` kept no
    share without it).
    """
    n = x.shape[-1]
    order = _greedy_order(x.detach(), root)
    x = relabel(x, order)
    inside = _relabel_mask(inside, order)
    x, total = _column_shifted(x)
    for v in range(n - 1, 0, -1):
        into = x[..., :v, v]  # [..., v] the weights into v of the vertices left
        log_d = logsumexp(into, -1)  # [...] pivot: all weight into v
        if inside is not None:  # padding vertices contribute an identity row: 0
            log_d = torch.where(inside[..., v], log_d, torch.zeros_like(log_d))
        total = total + log_d
        # A vertex nothing reaches has d_v = 0: log Z = -inf, and its paths are
        # -inf anyway, so a 0 shift avoids -inf - -inf.
        safe = torch.where(torch.isfinite(log_d), log_d, torch.zeros_like(log_d))
        via = (into - safe[..., None])[..., :, None] + x[..., None, v, :v]  # a -> v -> b
        # The diagonal gathers a -> v -> a loops; no pivot reads it (the column
        # of vertex a is read above row a only).
        x = _logaddexp(x[..., :v, :v], via)
    return total


def arborescence_log_partition(
    scores: Tensor, *, root: int = 0, inside: Tensor | None = None
) -> Tensor:
    """``log Σ_A exp(Σ_{(i→j)∈A} θ_ij)`` over the arborescences rooted at ``root``.

    The diagonal, column ``root`` and everything outside ``inside`` is not read.

    Args:
        scores: ``[..., n, n]`` log-potentials, entry ``[i, j]`` for the edge ``i → j``;
            ``-inf`` forbids an edge.
        root: the root vertex.
        inside: optional ``[..., n]`` mask of the vertices in each graph.

    Returns:
        ``[...]`` log-partition in ``scores``' dtype (computed in float64); ``-inf``
        where the finite edges do not reach every vertex from the root.
    """
    n = scores.shape[-1]
    edges = _edge_mask(n, root, inside, scores.device)
    x = torch.where(edges, scores.to(torch.float64), -math.inf)
    data = x.detach()
    finite = torch.isfinite(data)
    # The logdet path is chosen by reading the scores; a traced call cannot read
    # them and eliminates (exact at any spread and with -inf).
    fast = not tracing(data) and (not data.numel() or bool((finite == edges).all()))
    if fast and data.numel():
        low = torch.where(finite, data, math.inf).amin(-2)
        spread = torch.where(torch.isfinite(low), data.amax(-2) - low, 0.0)
        fast = float(spread.max()) <= LOGDET_SPREAD
    if fast:
        return _logdet(x, edges, root, inside).to(scores.dtype)
    roots = torch.full(x.shape[:-2], root, dtype=torch.long, device=x.device)
    return _eliminate(x, roots, inside).to(scores.dtype)


def spanning_tree_log_partition(scores: Tensor, *, inside: Tensor | None = None) -> Tensor:
    """``log Σ_T exp(Σ_{e∈T} θ_e)`` over the spanning trees of ``K_n``.

    Only the strict upper triangle of ``scores`` is read (and not past ``inside``).

    Args:
        scores: ``[..., n, n]`` edge log-potentials; ``-inf`` forbids an edge.
        inside: optional ``[..., n]`` mask of the vertices in each graph.

    Returns:
        ``[...]`` log-partition (``-inf`` where the finite edges disconnect a graph).
    """
    # Both orientations carry the undirected edge's potential; a tree is the
    # arborescence of its orientation away from any vertex. The root is an
    # endpoint of the heaviest edge, moved to vertex 0: the elimination then
    # measures everything from the heaviest cluster (see _eliminate).
    sym, inside, _ = rooted_symmetric(scores, inside)
    return arborescence_log_partition(sym, root=0, inside=inside)


def rooted_symmetric(scores: Tensor, inside: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor]:
    """Undirected scores as arborescence weights, with a heavy vertex moved to 0.

    Both orientations of an edge carry its upper-triangle score. Vertex 0 is
    swapped with an endpoint of the heaviest edge read (within ``inside``):
    rooted there, the elimination and Wilson's walks measure everything from
    the heaviest cluster.

    Args:
        scores: ``[..., n, n]`` edge scores (strict upper triangle read).
        inside: optional ``[..., n]`` mask of the vertices in each graph.

    Returns:
        ``(sym, inside, perm)``: the relabelled ``[..., n, n]`` weights, the
        relabelled mask and the labels ``[..., n]`` (a swap: :func:`relabel`
        by ``perm`` also maps results back).
    """
    n = scores.shape[-1]
    upper = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    read = upper if inside is None else upper & inside.unsqueeze(-1) & inside.unsqueeze(-2)
    heavy = torch.where(read, scores.detach(), -math.inf).flatten(-2).argmax(-1) // n  # [...]
    labels = torch.arange(n, device=scores.device).expand(*heavy.shape, n)
    swapped = labels.scatter(-1, heavy.unsqueeze(-1), 0)
    perm = torch.where(labels == 0, heavy.unsqueeze(-1), swapped)
    sym = relabel(torch.where(upper, scores, scores.transpose(-1, -2)), perm)
    return sym, _relabel_mask(inside, perm), perm


def _relabel_mask(inside: Tensor | None, perm: Tensor) -> Tensor | None:
    """``inside[..., perm]`` (``None`` stays ``None``)."""
    return None if inside is None else inside.expand(perm.shape).gather(-1, perm)


def relabel(x: Tensor, perm: Tensor) -> Tensor:
    """``x[..., perm[a], perm[b]]`` ``[..., n, n]`` for labels ``perm`` ``[*batch, n]``."""
    lead = x.shape[: x.ndim - perm.ndim - 1]  # sample dims in front of the batch
    p = perm.expand(*lead, *perm.shape)
    x = x.gather(-2, p.unsqueeze(-1).expand(x.shape))
    return x.gather(-1, p.unsqueeze(-2).expand(x.shape))


def eliminated_marginals(scores: Tensor, *, root: int | None, inside: Tensor | None) -> Tensor:
    """Tree marginals as the gradient of the log-space elimination: exact at any spread.

    The Laplacian-inverse marginals lose about ``spread / ln 10`` digits; the
    log-space elimination cancels nothing, so its gradient stays exact where the
    scores spread hundreds of nats. It costs ``n`` sequential steps and reads no
    value on the host. ``torch.func.grad`` (not ``autograd.grad``) takes it, so
    that ``torch.compile(fullgraph=True)`` traces it; its result is itself
    differentiable (SST's backward).

    Args:
        scores: ``[..., n, n]`` log-potentials (upper triangle read when ``root``
            is None: undirected spanning trees).
        root: the arborescences' root, or None for undirected spanning trees.
        inside: optional ``[..., n]`` mask of the vertices in each graph.

    Returns:
        ``[..., n, n]`` marginals in ``scores``' dtype (symmetric when undirected).
    """

    def log_z(s: Tensor) -> Tensor:
        if root is None:
            return spanning_tree_log_partition(s, inside=inside).sum()
        return arborescence_log_partition(s, root=root, inside=inside).sum()

    mu = torch.func.grad(log_z)(scores.to(torch.float64))
    if root is None:
        mu = mu + mu.transpose(-1, -2)
    return mu.to(scores.dtype)
