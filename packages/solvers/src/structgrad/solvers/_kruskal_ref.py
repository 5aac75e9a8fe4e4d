"""Pure-Python twin of ``_kruskal.pyx``: plain Kruskal with union-find.

Same interface and, by the uniqueness of the maximum spanning tree under a
strict total order of the edges, the same results as the compiled kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def kruskal(
    scores: NDArray[np.floating[Any]],
    lengths: NDArray[np.int64],
    adj: NDArray[np.floating[Any]],
    edges: NDArray[np.int64],
    components: NDArray[np.int64],
    record_trace: bool,
) -> None:
    """Fill ``adj`` (and ``edges``/``components`` if ``record_trace``) for every graph."""
    n = scores.shape[1]
    for g in range(scores.shape[0]):
        size = int(lengths[g])
        iu, ju = np.triu_indices(size, k=1)
        w = scores[g, iu, ju].astype(np.float64)
        # Descending score, ties to the smaller row-major pair index (i * n + j).
        order = np.lexsort((iu * n + ju, -w))
        label = list(range(size))
        t = 0
        for e in order:
            if t == size - 1:
                break
            u, v = int(iu[e]), int(ju[e])
            a, b = label[u], label[v]
            if a == b:
                continue
            adj[g, u, v] = adj[g, v, u] = 1
            if record_trace:
                edges[g, t] = (u, v)
                components[g, t, :size] = label
            lo, hi = min(a, b), max(a, b)
            label = [lo if x == hi else x for x in label]
            t += 1
