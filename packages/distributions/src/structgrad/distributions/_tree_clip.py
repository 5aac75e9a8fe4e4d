"""Range clipping of spanning-tree log-potentials that keeps the maximum spanning tree.

Small temperatures make log-potentials spread over thousands of units; the
Laplacian of the Matrix-Tree theorem then loses every digit to cancellation.
Clipping all weights to ``[max - R, max]`` (the reference SST code) fixes the
numerics but turns far-apart edges into ties, so the relaxation no longer
tends to the maximum spanning tree as ``τ → 0``. Here instead:

* tree edges of the maximum spanning tree ``T*`` are raised to ``max - R``;
* every other edge ``e = (a, b)`` is raised to ``bottleneck(a, b) - R``, where the
  bottleneck is the lightest (clipped) ``T*`` edge on the path from ``a`` to ``b``.

A non-tree edge never rises above its bottleneck (the cycle property), so
``T*`` stays a maximum spanning tree; as ``τ → 0`` the non-tree edges sit ``R``
below their bottlenecks (marginals ``O(n e^{-R})``), and the whole spread is at
most ``2R``. Inputs whose spread is already within these floors are unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

import structgrad.solvers as solvers


def bottleneck_clip(w: Tensor, valid: Tensor, lengths: Tensor | None, limit: float) -> Tensor:
    """Clip upper-triangle log-potentials ``w`` ``[B, n, n]`` (``-inf`` elsewhere).

    Args:
        w: log-potentials, ``-inf`` outside the valid upper-triangle pairs.
        valid: ``[B, n, n]`` mask of the pairs that exist (upper triangle, in-graph).
        lengths: ``[B]`` graph sizes or None.
        limit: the range ``R``.

    Returns:
        ``w`` with finite entries raised to their floor; the gradient of a
        raised entry flows to the maximum, whose offset it keeps.
    """
    n = w.shape[-1]
    lens = None if lengths is None else lengths.reshape(-1)
    floor = tree_clip_floor(w.detach().reshape(-1, n, n), valid.reshape(-1, n, n), lens, limit)
    # The floors sit at fixed offsets below the maximum: let them follow the live
    # maximum (zero in value, its gradient in backward), so that a global shift of
    # ``w`` shifts every clipped entry too and the gradient stays orthogonal to it,
    # as the tree law is (the reference's clip, max(w, max(w) - R), does the same).
    floor = floor.reshape(w.shape) + follow(w, (-2, -1), valid)
    return torch.where(torch.isneginf(w), w, torch.maximum(w, floor))


# An opaque op for torch.compile: the floors come from Kruskal's trace on the
# host (no gradient flows through them), traced as one call of known shape.
@torch.library.custom_op("structgrad::tree_clip_floor", mutates_args=())
def tree_clip_floor(flat: Tensor, valid: Tensor, lengths: Tensor | None, limit: float) -> Tensor:
    """``[B, n, n]`` floors of :func:`bottleneck_clip` (``-inf`` where nothing is floored).

    Args:
        flat: detached log-potentials ``[B, n, n]``, ``-inf`` off the valid pairs.
        valid: ``[B, n, n]`` mask of the pairs that exist.
        lengths: ``[B]`` graph sizes or None.
        limit: the range ``R``.
    """
    n = flat.shape[-1]
    lens = None if lengths is None else lengths.cpu()
    tree, trace = solvers.max_spanning_tree(flat, lengths=lens, return_trace=True)
    tree = tree.to(torch.bool) & valid
    top = torch.where(tree, flat, -torch.inf).amax(dim=(-2, -1), keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    tree_w = torch.where(tree, torch.maximum(flat, top - limit), torch.inf)
    # Kruskal joins the components of u and v at step t: every pair (a, b) across
    # them has that edge as its bottleneck (later edges are lighter).
    bott = torch.full_like(flat, torch.inf)
    edges, comps = trace.edges, trace.components  # [B, n-1, 2], [B, n-1, n]
    rows = torch.arange(flat.shape[0], device=flat.device)
    for t in range(n - 1):
        u, v = edges[:, t, 0], edges[:, t, 1]
        live = u >= 0
        u, v = u.clamp_min(0), v.clamp_min(0)
        label = comps[:, t]  # [B, n]
        side_u = label == label[rows, u].unsqueeze(-1)
        side_v = label == label[rows, v].unsqueeze(-1)
        across = (side_u.unsqueeze(-1) & side_v.unsqueeze(-2)) | (
            side_v.unsqueeze(-1) & side_u.unsqueeze(-2)
        )
        across = across & live.view(-1, 1, 1)
        weight = tree_w[rows, u, v].view(-1, 1, 1)
        bott = torch.where(across, weight, bott)
    floor = torch.where(tree, top - limit, bott - limit)
    return torch.where(torch.isfinite(floor), floor, torch.full_like(floor, -torch.inf))


@tree_clip_floor.register_fake
def _(flat: Tensor, valid: Tensor, lengths: Tensor | None, limit: float) -> Tensor:
    return torch.empty_like(flat)


def follow(w: Tensor, dims: tuple[int, ...], valid: Tensor | None = None) -> Tensor:
    """``m - m.detach()`` for the maximum ``m`` of the finite (and ``valid``) ``w`` along ``dims``.

    Zero in value; adding it to a detached floor makes the floor move with that
    maximum in backward (0 where nothing is finite and valid).
    """
    keep = torch.isfinite(w) if valid is None else valid & torch.isfinite(w)
    top = torch.where(keep, w, -torch.inf).amax(dim=dims, keepdim=True)
    live = top - top.detach()
    return torch.where(torch.isfinite(top), live, torch.zeros_like(live))
