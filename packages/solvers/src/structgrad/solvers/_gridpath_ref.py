"""Pure-Python twin of ``_gridpath.pyx`` (same interface, same results)."""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

_MOVES = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def dijkstra(costs: NDArray[np.floating[Any]], mask: NDArray[np.floating[Any]]) -> None:
    """Fill ``mask`` with the cheapest 8-neighbour path of every grid."""
    _, h, w = costs.shape
    target = h * w - 1
    for g in range(costs.shape[0]):
        cost = costs[g].astype(np.float64).tolist()
        dist = [math.inf] * (h * w)
        pred = [-1] * (h * w)
        done = [False] * (h * w)
        dist[0] = cost[0][0]
        heap = [(dist[0], 0)]
        while heap:
            d, cur = heapq.heappop(heap)
            if done[cur]:
                continue
            done[cur] = True
            if cur == target:
                break
            r, c = divmod(cur, w)
            for dr, dc in _MOVES:
                nr, nc = r + dr, c + dc
                if not (0 <= nr < h and 0 <= nc < w):
                    continue
                nb = nr * w + nc
                if done[nb]:
                    continue
                nd = d + cost[nr][nc]
                if nd < dist[nb]:
                    dist[nb] = nd
                    pred[nb] = cur
                    heapq.heappush(heap, (nd, nb))
        cur = target
        while cur >= 0:
            mask[g, cur // w, cur % w] = 1
            cur = pred[cur]
