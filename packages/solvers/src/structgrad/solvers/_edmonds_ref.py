"""Pure-Python twin of the ``_edmonds`` kernel: same algorithm, same results, bit for bit.

Every choice is made exactly as in ``_edmonds.pyx``: weights are the pairs ``(c, v)``
(``c = -1`` for ``-inf``, else 0; ``v`` = the finite part in float64) compared
lexicographically, reduced scores are ``score - off`` with the same float64 operations,
ties go to the lowest (source, target) in row-major order, and cycles are contracted one
at a time in the order the compiled search finds them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


class _Graph:
    """Working state of one graph (the compiled kernel's scratch arrays)."""

    def __init__(self, w: NDArray[np.floating[Any]], root: int) -> None:
        length = w.shape[0]
        neg = np.isneginf(w)
        self.cnt = -neg.astype(np.int64)  # [L, L] -1 on forbidden edges
        self.val = np.where(neg, 0.0, w.astype(np.float64))  # [L, L] finite parts
        self.offc = np.zeros(length, dtype=np.int64)
        self.offv = np.zeros(length, dtype=np.float64)
        self.cs = np.full(length, -1, dtype=np.int64)  # super-vertex of each vertex
        self.leaf = np.full(length, -1, dtype=np.int64)
        self.up: list[int] = []  # super-vertex each step was contracted into, or -1
        self.alive: list[bool] = []
        self.edges: list[tuple[int, int]] = []
        self.members: list[NDArray[np.bool_]] = []
        for v in range(length):
            if v != root:
                self.cs[v] = self.leaf[v] = self._new_step()

    def _new_step(self) -> int:
        self.up.append(-1)
        self.alive.append(True)
        return len(self.up) - 1

    def choose(self, t: int) -> None:
        """Best in-edge of super-vertex ``t``; records it and subtracts its reduced score."""
        inside = self.cs == t
        rows = np.flatnonzero(~inside)
        cols = np.flatnonzero(inside)
        sub = np.ix_(rows, cols)
        rc = self.cnt[sub] - self.offc[cols]  # [rows, cols] reduced -inf counts
        rv = self.val[sub] - self.offv[cols]  # [rows, cols] reduced finite parts
        top = rc.max()
        # rv is finite, so -inf marks the non-maximal counts; argmax takes the first
        # maximum in row-major order, i.e. the lowest (source, target).
        k = int(np.argmax(np.where(rc == top, rv, -np.inf)))
        a, q = divmod(k, cols.size)
        self.edges.append((int(rows[a]), int(cols[q])))
        self.members.append(inside)
        self.offc[cols] += top
        self.offv[cols] += rv[a, q]

    def find_cycle(self) -> list[int]:
        """Steps of the first cycle of best in-edges (starts tried in step order)."""
        mark = [-1] * len(self.up)
        for s0, alive in enumerate(self.alive):
            if not alive or mark[s0] >= 0:
                continue
            s = s0
            while s >= 0 and mark[s] < 0:
                mark[s] = s0
                s = int(self.cs[self.edges[s][0]])
            if s >= 0 and mark[s] == s0:
                cycle = [s]
                s = int(self.cs[self.edges[s][0]])
                while s != cycle[0]:
                    cycle.append(s)
                    s = int(self.cs[self.edges[s][0]])
                return cycle
        return []

    def contract(self, cycle: list[int]) -> int:
        """Merge the cycle's super-vertices into a new one and return its step."""
        t = self._new_step()
        for s in cycle:
            self.up[s] = t
            self.alive[s] = False
        self.cs[np.isin(self.cs, cycle)] = t
        return t

    def expand(self) -> list[tuple[int, int]]:
        """Final edges: outermost first, an un-entered super-vertex keeps its best in-edge."""
        entered = [False] * len(self.up)
        chosen = []
        for s in range(len(self.up) - 1, -1, -1):
            if entered[s]:
                continue
            chosen.append(self.edges[s])
            t = int(self.leaf[self.edges[s][1]])
            while t >= 0 and not entered[t]:
                entered[t] = True
                t = self.up[t]
        return chosen


def edmonds(
    scores: NDArray[np.floating[Any]],
    lengths: NDArray[np.int64],
    root: int,
    out: NDArray[np.floating[Any]],
    edges: NDArray[np.int64],
    members: NDArray[np.uint8],
    n_steps: NDArray[np.int64],
) -> None:
    """Maximum spanning arborescences of a batch of graphs, with contraction traces.

    Same contract as the compiled ``_edmonds.edmonds``: fills ``out`` ``[B, n, n]``,
    ``edges`` ``[B, S, 2]``, ``members`` ``[B, S, n]`` (skipped when its second
    dimension is 0) and ``n_steps`` ``[B]``.
    """
    record = members.shape[1] > 0
    for b in range(scores.shape[0]):
        length = int(lengths[b])
        g = _Graph(scores[b, :length, :length], root)
        for s in range(len(g.up)):
            g.choose(s)
        while cycle := g.find_cycle():
            g.choose(g.contract(cycle))
        for i, j in g.expand():
            out[b, i, j] = 1
        n_steps[b] = len(g.edges)
        if n_steps[b]:
            edges[b, : n_steps[b]] = g.edges
            if record:
                members[b, : n_steps[b], :length] = g.members
