"""Pure-Python twin of ``_edmonds.pyx`` (same interface, same results).

See the compiled module for the algorithm; this follows it step by step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def _best_in_edge(w: list[list[float]], st: dict[str, Any], s: int, size: int) -> None:
    top, off = st["top"], st["off"]
    best, bi, bj = 0.0, -1, -1
    inside = [j for j in range(size) if top[j] == s]
    for i in range(size):
        if top[i] == s:
            continue
        for j in inside:
            r = w[i][j] - off[j]
            if bi < 0 or r > best:
                best, bi, bj = r, i, j
    st["src"][s], st["dst"][s] = bi, bj
    for j in inside:
        off[j] += best


def _find_cycle(st: dict[str, Any], count: int, root: int) -> list[int]:
    color = [-1] * count
    top, src, alive = st["top"], st["src"], st["alive"]
    for x in range(count):
        if not alive[x] or x == root or color[x] != -1:
            continue
        path = []
        y = x
        while y != root and color[y] == -1:
            color[y] = x
            path.append(y)
            y = top[src[y]]
        if y != root and color[y] == x:
            return path[path.index(y) :]
    return []


def _skip(s: int, step: int) -> None:
    pass


def _recorder(
    edges: NDArray[np.int64], members: NDArray[np.uint8], g: int, st: dict[str, Any], size: int
) -> Any:
    def record(s: int, step: int) -> None:
        edges[g, step] = (st["src"][s], st["dst"][s])
        members[g, step, :size] = [t == s for t in st["top"]]

    return record


def edmonds(
    scores: NDArray[np.float64],
    lengths: NDArray[np.int64],
    root: int,
    adj: NDArray[np.float64],
    edges: NDArray[np.int64],
    members: NDArray[np.uint8],
    n_steps: NDArray[np.int64],
    record_trace: bool,
) -> None:
    """Fill ``adj`` (and the trace arrays if ``record_trace``) for every graph."""
    n = scores.shape[1]
    for g in range(scores.shape[0]):
        size = int(lengths[g])
        w = scores[g].tolist()
        st: dict[str, Any] = {
            "off": [0.0] * size,
            "top": list(range(size)),
            "sup": [-1] * (2 * n),
            "src": [-1] * (2 * n),
            "dst": [-1] * (2 * n),
            "alive": [True] * size + [False] * (2 * n - size),
        }
        step = 0
        record = _recorder(edges, members, g, st, size) if record_trace else _skip
        for v in range(size):
            if v != root:
                _best_in_edge(w, st, v, size)
                record(v, step)
                step += 1
        count = size
        while cycle := _find_cycle(st, count, root):
            x = count
            count += 1
            st["alive"][x] = True
            for c in cycle:
                st["sup"][c] = x
                st["alive"][c] = False
            st["top"] = [x if st["sup"][t] == x else t for t in st["top"]]
            _best_in_edge(w, st, x, size)
            record(x, step)
            step += 1
        asrc = list(st["src"][:count])
        adst = list(st["dst"][:count])
        for x in range(count - 1, size - 1, -1):
            j = adst[x]
            c = j
            while st["sup"][c] != x:
                c = st["sup"][c]
            asrc[c], adst[c] = asrc[x], j
        for v in range(size):
            if v != root:
                adj[g, asrc[v], v] = 1
        n_steps[g] = step
