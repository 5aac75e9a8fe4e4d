"""Device-resident linear assignment: the CUDA kernel of ``structgrad::linear_assignment``.

Batched torch code that never leaves the device and returns what the compiled
kernel returns, ties included. The compiled kernel solves an item by
Jonker-Volgenant and keeps that answer only when its dual prices certify it as
the unique optimum; otherwise (ties) it solves the item again by the textbook
O(n^3) shortest augmenting path method (Hungarian, e-maxx form, with a greedy
row-reduction start), step for step the pure-Python twin
``_assignment_ref.assignment``. A unique optimum is found by any exact method,
so running that textbook method on every item gives the kernel's matching in
every case. Here it runs for the whole batch at once: one row augmentation at a
time, each Dijkstra step a handful of ``[B, n]`` tensor operations under a
mask of the items still searching (O(n^2) steps, each O(B n) work), with the
same float64 operations in the same order as the twin, so ties resolve alike.

``-inf`` entries are replaced per item by the sentinel of
:func:`structgrad.solvers._validate.forbid_neg_inf` (a torch twin of it, without
host reads).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validate import HUGE

__all__ = ["linear_assignment"]


def forbid_neg_inf(x: Tensor, terms: int) -> Tensor:
    """``x`` ``[B, n, n]`` float64 with each item's ``-inf`` replaced by its sentinel.

    The torch twin of :func:`structgrad.solvers._validate.forbid_neg_inf`: the
    same arithmetic, evaluated for every item (no host read decides whether
    there is a ``-inf`` at all).
    """
    neg = torch.isneginf(x)
    hi = torch.where(neg, -torch.inf, x).amax((-2, -1), keepdim=True)
    lo = torch.where(neg, torch.inf, x).amin((-2, -1), keepdim=True)
    all_neg = ~torch.isfinite(hi)
    hi, lo = torch.where(all_neg, 0.0, hi), torch.where(all_neg, 0.0, lo)
    # Items with a -inf (or a huge score) are scaled by a power of two (exact) to
    # a largest finite |score| in [0.5, 1), as in the twin: the sentinel stays
    # finite, tiny scores are not lost next to it, and no difference overflows.
    shift = torch.frexp(torch.maximum(hi.abs(), lo.abs())).exponent.to(x.dtype)
    huge = torch.maximum(hi.abs(), lo.abs()) >= HUGE  # differences would overflow
    shift = torch.where(neg.any(-1, keepdim=True).any(-2, keepdim=True) | huge, shift, 0.0)
    # Two factors: 2**1062 (a subnormal item's shift) alone would overflow.
    half = torch.floor(shift / 2)
    scale_a, scale_b = torch.exp2(-half), torch.exp2(half - shift)
    x, hi, lo = (t * scale_a * scale_b for t in (x, hi, lo))
    sentinel = lo - (hi - lo + 1.0) * (terms + 1)
    return torch.where(neg, sentinel, x)


def linear_assignment(scores: Tensor) -> Tensor:
    """``[..., n, n]`` permutation matrices of maximum total score (the kernel's, ties included).

    Args:
        scores: ``[..., n, n]`` floating scores, ``n >= 1``, no NaN or ``+inf``.
    """
    n = scores.shape[-1]
    cost = -forbid_neg_inf(scores.reshape(-1, n, n).to(torch.float64), n)
    size, device = cost.shape[0], cost.device
    rows = torch.arange(size, device=device)
    # 1-based rows and columns as in the twin: index 0 is the search's root.
    u = torch.zeros(size, n + 1, dtype=torch.float64, device=device)
    v = torch.zeros_like(u)
    p = torch.zeros(size, n + 1, dtype=torch.long, device=device)  # row of each column
    way = torch.zeros_like(p)
    done = torch.zeros(size, n + 1, dtype=torch.bool, device=device)
    # The greedy start: each row's cheapest column (the first of ties), kept if still free.
    for i in range(1, n + 1):
        low, j1 = cost[:, i - 1].min(-1)  # min returns the first minimum's index
        j1 = j1 + 1
        u[:, i] = low
        free = p[rows, j1] == 0
        done[:, i] = free
        p[rows, j1] = torch.where(free, i, p[rows, j1])
    for i in range(1, n + 1):
        active = ~done[:, i]
        if not bool(active.any()):  # one host read per row: skip rows the start matched
            continue
        p[:, 0] = torch.where(active, i, p[:, 0])
        j0 = torch.zeros(size, dtype=torch.long, device=device)
        minv = torch.full((size, n + 1), torch.inf, dtype=torch.float64, device=device)
        used = torch.zeros(size, n + 1, dtype=torch.bool, device=device)
        searching = active.clone()
        # Dijkstra over the columns: each step settles one column, so n steps suffice.
        for step in range(n):
            used[rows, j0] |= searching
            i0 = p[rows, j0]
            reduced = (cost[rows, (i0 - 1).clamp(min=0)] - u[rows, i0][:, None]) - v[:, 1:]
            open_ = ~used[:, 1:] & searching[:, None]
            better = open_ & (reduced < minv[:, 1:])
            minv[:, 1:] = torch.where(better, reduced, minv[:, 1:])
            way[:, 1:] = torch.where(better, j0[:, None], way[:, 1:])
            delta, j1 = torch.where(open_, minv[:, 1:], torch.inf).min(-1)
            delta = torch.where(searching, delta, 0.0)
            # Potentials: settled columns (and their rows) move by delta, the rest's
            # distances drop by it; adding 0.0 leaves finished items unchanged.
            step_used = used & searching[:, None]
            u.scatter_add_(1, p, torch.where(step_used, delta[:, None], 0.0))
            v = torch.where(step_used, v - delta[:, None], v)
            minv = torch.where(~used & searching[:, None], minv - delta[:, None], minv)
            j0 = torch.where(searching, j1 + 1, j0)
            searching = searching & (p[rows, j0] != 0)
            if step % 8 == 7 and not bool(searching.any()):  # a host read every 8 steps
                break
        # Augment along the path back to the root.
        for _ in range(n):
            moving = active & (j0 != 0)
            j1 = way[rows, j0]
            p[rows, j0] = torch.where(moving, p[rows, j1], p[rows, j0])
            j0 = torch.where(moving, j1, j0)
    perm = torch.zeros(size, n, n, dtype=scores.dtype, device=device)
    cols = torch.arange(n, device=device).expand(size, n)
    perm[rows[:, None], p[:, 1:] - 1, cols] = 1
    return perm.reshape(scores.shape)
