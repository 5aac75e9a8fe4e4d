"""Range clipping of arborescence log-potentials that keeps the maximum arborescence.

A per-column clip (raise every in-edge of ``j`` to ``max_j - R``) is exact when
nothing is raised, but at small temperatures it turns the edges that break the
cycles of best in-edges into ties with every other clipped edge, and the
relaxation stops tending to the maximum arborescence. Here the clip acts on
Edmonds' linear-programming dual instead, which Chu-Liu/Edmonds computes anyway.

Each step ``s`` of the contraction trace (a vertex, or a contracted super-vertex
``S_s``) has a dual ``y_s``: the reduced score of its chosen in-edge. Every edge
``e`` splits as ``θ_e = r_e + Σ_{s : e enters S_s} y_s`` with reduced score
``r_e ≤ 0``, ``r_e = 0`` on the maximum arborescence ``A*``, and ``y_s ≤ 0`` for
every contraction; ``A*`` enters every contracted set once, any arborescence at
least once, so ``θ(A) − θ(A*) = Σ_{e∈A} r_e + Σ_s y_s (k_s(A) − 1) ≤ 0``.

The clip raises ``r_e`` to ``−R`` and each contraction dual ``y_s`` to
``−R/c_s``, ``c_s`` the longest chain of nested contracted sets through
``S_s`` (the vertex duals are per-column shifts, which change nothing), and
rebuilds the scores. The identity above still holds term by term, so ``A*``
stays a maximum arborescence; no chain of entered sets costs more than ``R``
(float64 loses about that many nats to cancellation), and as ``τ → 0`` every
other arborescence sits at least ``R/depth`` below ``A*`` (marginals
``O(n² e^{−R/depth})``). An edge is raised only if ``max_j − θ_e > R``: inputs
whose columns spread less than ``R`` are exact.

References:
    Edmonds, "Optimum branchings", J. Res. NBS 1967 (the dual);
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (App. D.2: range clipping).
"""

from __future__ import annotations

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._tree_clip import follow

__all__ = ["dual_clip"]


def dual_clip(w: Tensor, lengths: Tensor | None, root: int, limit: float) -> Tensor:
    """Clip arborescence log-potentials ``w`` ``[..., n, n]`` around their maximum.

    Args:
        w: float log-potentials of edges ``i → j``, ``-inf`` for absent edges
            (the diagonal, edges into the root, vertices past a length).
        lengths: ``[...]`` graph sizes, or ``None``.
        root: the root vertex.
        limit: the range ``R > 0``.

    Returns:
        ``w`` with the edges described in the module docstring raised (the
        gradient of a raised entry flows to its column's maximum, which its
        floor follows; the others pass through unchanged).
    """
    n = w.shape[-1]
    lens = None if lengths is None else lengths.reshape(-1)
    floor, raised = dual_clip_floor(w.detach().reshape(-1, n, n), lens, root, limit)
    # The floors of column j move with a shift of that column (every arborescence
    # has one edge into j): let them follow the column's live maximum, so that the
    # gradient stays orthogonal to per-column shifts, as the law is.
    floor = floor.view(w.shape) + follow(w, (-2,))
    return torch.where(raised.view(w.shape), floor, w)


# An opaque op for torch.compile: the floors come from Edmonds' trace on the
# host (no gradient flows through them), traced as one call of known shapes.
@torch.library.custom_op("structgrad::dual_clip_floor", mutates_args=())
def dual_clip_floor(
    flat: Tensor, lengths: Tensor | None, root: int, limit: float
) -> tuple[Tensor, Tensor]:
    """``([B, n, n] floors, [B, n, n] raised mask)`` of :func:`dual_clip`.

    Args:
        flat: detached log-potentials ``[B, n, n]`` (``-inf`` for absent edges).
        lengths: ``[B]`` graph sizes or None.
        root: the root vertex.
        limit: the range ``R``.
    """
    lens = None if lengths is None else lengths.cpu()
    _, trace = solvers.max_arborescence(flat, root=root, lengths=lens, return_trace=True)
    edges, members = trace.edges.to(flat.device), trace.members.to(flat.device)  # [B,S,2], [B,S,n]
    n_steps = trace.n_steps.to(flat.device)  # [B]
    rows = torch.arange(flat.shape[0], device=flat.device)
    live = torch.arange(edges.shape[1], device=flat.device) < n_steps.unsqueeze(-1)  # [B, S]
    inside = members & live.unsqueeze(-1)  # [B, S, n]
    contraction = inside.sum(-1) > 1  # [B, S]
    # Entering a chain of nested contracted sets costs the sum of their duals,
    # and float64 loses about that many nats to cancellation: split the range
    # over the longest chain through each set (the sets holding a vertex form a
    # chain), so that no chain sums to more than R.
    count = (inside & contraction.unsqueeze(-1)).sum(1)  # [B, n] sets holding each vertex
    chain = torch.where(inside, count.unsqueeze(1), 0).amax(-1).clamp_min(1)  # [B, S]
    budget = limit / chain.to(flat.dtype)  # [B, S]
    dual = torch.zeros_like(flat)  # Σ y_s over the sets each edge enters
    clipped = torch.zeros_like(flat)  # the same sum with the contraction duals clipped
    raised = torch.zeros(flat.shape, dtype=torch.bool, device=flat.device)
    for s in range(edges.shape[1]):
        now = inside[:, s]  # [B, n]
        enters = ~now.unsqueeze(-1) & now.unsqueeze(-2)  # [B, n, n]: i out, j in
        src, dst = edges[:, s, 0].clamp_min(0), edges[:, s, 1].clamp_min(0)
        y = flat[rows, src, dst] - dual[rows, src, dst]  # the chosen edge's reduced score
        # No finite in-edge (a disconnected graph, reported by the marginals): no dual.
        y = torch.where(live[:, s] & torch.isfinite(y), y, torch.zeros_like(y))
        low = contraction[:, s] & (y < -budget[:, s])
        y_clip = torch.where(low, -budget[:, s], y)
        dual = dual + enters * y.view(-1, 1, 1)
        clipped = clipped + enters * y_clip.view(-1, 1, 1)
        raised |= enters & low.view(-1, 1, 1)
    reduced = flat - dual  # <= 0 up to rounding
    raised = (raised | (reduced < -limit)) & torch.isfinite(flat)
    return reduced.clamp_min(-limit) + clipped, raised


@dual_clip_floor.register_fake
def _(flat: Tensor, lengths: Tensor | None, root: int, limit: float) -> tuple[Tensor, Tensor]:
    return torch.empty_like(flat), torch.empty(flat.shape, dtype=torch.bool, device=flat.device)
