"""Device-resident torch twins of the solvers that have a parallel algorithm.

The CUDA kernels of the registered ops (:mod:`structgrad.solvers._torch_ops`):
batched torch code that never leaves the device. Each returns what the
compiled kernel returns, ties included, and is tested against it on CPU
tensors (the code is device-agnostic):

- top-k: a stable descending sort (ties to the lower index, as the kernel);
- maximum spanning tree: Prim's algorithm, one vertex per step for the whole
  batch, under the kernel's strict edge order (score descending, then the
  row-major index ascending), under which the tree is unique, so Prim and
  Kruskal agree;
- grid shortest path: Bellman-Ford min-plus relaxation of the 8-neighbour
  grid in float64, then the predecessor Dijkstra keeps (among the neighbours
  on a shortest path, the lowest row-major index: all of them are settled at
  the same distance, the lowest index first).

The linear assignment's twin is in :mod:`structgrad.solvers._torch_assignment`.
Chu-Liu/Edmonds has no such twin: on CUDA it runs on the host (see
:class:`structgrad.solvers._bridge.Bridge`).

The inputs are validated before these run (eagerly; a traced call defers to
the op's run time).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["grid_shortest_path", "max_spanning_tree", "top_k"]


def top_k(scores: Tensor, k: int) -> Tensor:
    """``[..., n]`` 0/1 mask of the ``k`` largest entries of each row (ties: lower index)."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(scores).scatter_(-1, order, 1.0)


def max_spanning_tree(scores: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Symmetric 0/1 adjacency ``[..., n, n]`` of the maximum spanning tree (upper triangle read).

    Args:
        scores: ``[..., n, n]`` floating scores, no NaN or ``+inf``.
        lengths: ``[...]`` graph sizes in ``[1, n]`` (None: all ``n``).
    """
    n = scores.shape[-1]
    batch = scores.shape[:-2]
    x = scores.reshape(-1, n, n).to(torch.float64)
    size = x.shape[0]
    rows = torch.arange(size, device=x.device)
    upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
    w = torch.where(upper, x, x.transpose(-1, -2))  # w[u, v] = score of the pair
    index = torch.arange(n, device=x.device)
    # The tie-break: the row-major index of the pair (min, max).
    first, second = index[:, None], index[None, :]
    key = torch.minimum(first, second) * n + torch.maximum(first, second)
    lens = torch.full((size,), n, device=x.device) if lengths is None else lengths.reshape(-1)
    inside = index < lens.to(x.device)[:, None]  # [B, n]
    in_tree = index == 0
    in_tree = in_tree.expand(size, n).clone()
    best, best_key = w[:, 0, :].clone(), key[0].expand(size, n).clone()
    parent = torch.zeros(size, n, dtype=torch.long, device=x.device)
    adj = torch.zeros(size, n, n, dtype=scores.dtype, device=x.device)
    big = n * n
    for _ in range(n - 1):
        candidate = inside & ~in_tree  # [B, n]
        live = candidate.any(-1)  # graphs still growing
        top = torch.where(candidate, best, -torch.inf).amax(-1, keepdim=True)
        tied = candidate & (best == top)
        v = torch.where(tied, best_key, big).argmin(-1)  # [B]: the next vertex
        u = parent[rows, v]
        on = live.to(adj.dtype)
        adj[rows, u, v] = torch.maximum(adj[rows, u, v], on)
        adj[rows, v, u] = torch.maximum(adj[rows, v, u], on)
        in_tree[rows, v] |= live
        # Edges from v that beat a vertex's best edge into the tree, in the strict order.
        score_v, key_v = w[rows, v], key[v]  # [B, n]
        better = (score_v > best) | ((score_v == best) & (key_v < best_key))
        better = better & live[:, None]
        best = torch.where(better, score_v, best)
        best_key = torch.where(better, key_v, best_key)
        parent = torch.where(better, v[:, None], parent)
    return adj.reshape(*batch, n, n)


_STEPS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _shifted(values: Tensor, di: int, dj: int, fill: float) -> Tensor:
    """``out[i, j] = values[i + di, j + dj]`` (``fill`` outside the grid)."""
    h, w = values.shape[-2:]
    out = torch.full_like(values, fill)
    dst_i, src_i = slice(max(-di, 0), h - max(di, 0)), slice(max(di, 0), h - max(-di, 0))
    dst_j, src_j = slice(max(-dj, 0), w - max(dj, 0)), slice(max(dj, 0), w - max(-dj, 0))
    out[..., dst_i, dst_j] = values[..., src_i, src_j]
    return out


def grid_shortest_path(costs: Tensor) -> Tensor:
    """``[..., H, W]`` 0/1 mask of the cheapest 8-neighbour path, top-left to bottom-right.

    Args:
        costs: ``[..., H, W]`` finite non-negative vertex costs.
    """
    h, w = costs.shape[-2:]
    c = costs.reshape(-1, h, w).to(torch.float64)
    size = c.shape[0]
    inf = torch.inf
    dist = torch.full_like(c, inf)
    dist[:, 0, 0] = c[:, 0, 0]
    # Cells on a cheapest path, the fewest: it tells the walk back through
    # zero-cost cells (where distances tie) which neighbour is nearer the start.
    hops = torch.full_like(c, inf)
    hops[:, 0, 0] = 1.0
    # Relax until nothing changes; a shortest path has at most H * W cells, and
    # each sweep extends every settled path by one cell.
    check = max(h, w)
    for sweep in range(h * w):
        new_dist, new_hops = dist, hops
        for di, dj in _STEPS:  # (distance, hops) in lexicographic order
            d = _shifted(dist, di, dj, inf) + c
            k = _shifted(hops, di, dj, inf) + 1.0
            better = (d < new_dist) | ((d == new_dist) & (k < new_hops))
            new_dist, new_hops = torch.where(better, d, new_dist), torch.where(better, k, new_hops)
        done = (sweep + 1) % check == 0 and torch.equal(new_dist, dist)
        done = done and torch.equal(new_hops, hops)  # one host read every `check` sweeps
        dist, hops = new_dist, new_hops
        if done:
            break
    # Walk back from the target. With positive costs Dijkstra settles the cells
    # in (distance, index) order and changes a predecessor only on a strict
    # improvement: the predecessor of v is, among the neighbours u with
    # dist[u] + c[v] == dist[v], the one of least (dist[u], row-major index).
    # Through zero-cost cells the neighbour must also be fewer hops from the
    # start (Dijkstra's choice there depends on its heap; equal cost either way).
    mask = torch.zeros_like(c)
    rows = torch.arange(size, device=c.device)
    vi = torch.full((size,), h - 1, device=c.device)
    vj = torch.full((size,), w - 1, device=c.device)
    mask[rows, vi, vj] = 1.0
    for _ in range(h * w - 1):
        away = (vi != 0) | (vj != 0)
        if not bool(away.any()):
            break
        here, cost, count = dist[rows, vi, vj], c[rows, vi, vj], hops[rows, vi, vj]
        best_i, best_j = vi, vj
        best_d = torch.full_like(here, inf)
        for di, dj in _STEPS:  # ascending row-major index of the neighbour
            ui, uj = vi + di, vj + dj
            ok = away & (ui >= 0) & (ui < h) & (uj >= 0) & (uj < w)
            ui, uj = ui.clamp(0, h - 1), uj.clamp(0, w - 1)
            d = dist[rows, ui, uj]
            nearer = (d < here) | (hops[rows, ui, uj] < count)
            hit = ok & (d + cost == here) & nearer & (d < best_d)
            best_i, best_j = torch.where(hit, ui, best_i), torch.where(hit, uj, best_j)
            best_d = torch.where(hit, d, best_d)
        vi, vj = best_i, best_j
        mask[rows, vi, vj] = 1.0
    return mask.to(costs.dtype).reshape(costs.shape)
