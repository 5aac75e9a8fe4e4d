"""Pure-Python twins of ``_assignment.pyx`` (same interface, same results)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray


def assignment(scores: NDArray[np.float64], perm: NDArray[np.floating[Any]]) -> None:
    """Fill ``perm`` with a maximum-weight permutation matrix for every matrix."""
    n = scores.shape[1]
    for g in range(scores.shape[0]):
        cost = (-scores[g]).tolist()
        u = [0.0] * (n + 1)
        v = [0.0] * (n + 1)
        p = [0] * (n + 1)
        way = [0] * (n + 1)
        done = [False] * (n + 1)
        # Row reduction and a greedy start, as in the compiled kernel.
        for i in range(1, n + 1):
            j1 = 1
            for j in range(2, n + 1):
                if cost[i - 1][j - 1] < cost[i - 1][j1 - 1]:
                    j1 = j
            u[i] = cost[i - 1][j1 - 1]
            done[i] = p[j1] == 0
            if done[i]:
                p[j1] = i
        for i in range(1, n + 1):
            if done[i]:
                continue
            p[0] = i
            j0 = 0
            minv = [math.inf] * (n + 1)
            used = [False] * (n + 1)
            while True:
                used[j0] = True
                i0 = p[j0]
                delta = math.inf
                j1 = 0
                for j in range(1, n + 1):
                    if not used[j]:
                        cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                        if cur < minv[j]:
                            minv[j] = cur
                            way[j] = j0
                        if minv[j] < delta:
                            delta = minv[j]
                            j1 = j
                for j in range(n + 1):
                    if used[j]:
                        u[p[j]] += delta
                        v[j] -= delta
                    else:
                        minv[j] -= delta
                j0 = j1
                if p[j0] == 0:
                    break
            while j0 != 0:
                j1 = way[j0]
                p[j0] = p[j1]
                j0 = j1
        for j in range(1, n + 1):
            perm[g, p[j] - 1, j - 1] = 1


def crossing(
    scores: NDArray[np.floating[Any]], perm: NDArray[np.floating[Any]], edges: NDArray[np.int64]
) -> None:
    """Greedy matching: repeatedly take the global argmax and cross out its row and column."""
    n = scores.shape[1]
    for g in range(scores.shape[0]):
        values = scores[g].astype(np.float64)
        free = np.ones((n, n), dtype=bool)
        for t in range(n):
            # The first available entry (row-major) holding the largest available value;
            # availability is tracked apart from the values since -inf is a valid score.
            best = values[free].max()
            r, c = divmod(int(np.flatnonzero(free & (values == best))[0]), n)
            perm[g, r, c] = 1
            edges[g, t] = (r, c)
            free[r, :] = False
            free[:, c] = False
