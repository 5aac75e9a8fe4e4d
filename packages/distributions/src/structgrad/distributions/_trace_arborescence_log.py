"""The log-space twin of Chu-Liu/Edmonds for the recursive Gumbel-max arborescence.

:func:`._trace_arborescence.arborescence_solve` runs the compiled solver on
rescaled exponentials ``−c·exp(−U)``; the instances whose read utilities span
more than float64's exponent range are redone here by :func:`redo_in_log_space`,
with every weight kept in log space (:func:`log_space_cle`), so the law stays
exact up to rounding at any scale (Struminsky et al. 2021, §3.1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from structgrad.solvers import ArborescenceTrace

__all__ = ["log_space_cle", "redo_in_log_space", "redo_op"]


def log_space_cle(
    u: NDArray[np.float64], root: int
) -> tuple[list[tuple[int, int]], list[NDArray[np.bool_]], list[tuple[int, int]]]:
    """Minimum arborescence of ``E = exp(−u)`` by CLE with every weight kept in log space.

    The same steps, tie-breaking (lowest ``(source, target)``) and contraction order
    as the solver's kernel (its pure-Python twin ``_edmonds_ref``), but reduced
    weights ``E_ij − off_j`` are held as logs, ``log E_ij + log1p(−exp(log off_j −
    log E_ij))``, so no dynamic range is lost. For the instances whose utilities
    span more than float64's exponent range; a Python loop, one graph of size ``L``.

    Args:
        u: ``[L, L]`` float64 utilities (``-inf`` forbids an edge).
        root: root vertex.

    Returns:
        The steps' edges, the steps' members ``[L]`` and the arborescence's edges.
    """
    length = u.shape[0]
    log_e = -u  # [L, L] log weights; +inf = forbidden
    log_off = np.full(length, -np.inf)  # log of the amount subtracted from column j
    cs = np.full(length, -1)  # super-vertex (step) of each vertex
    leaf = np.full(length, -1)
    up: list[int] = []
    alive: list[bool] = []
    edges: list[tuple[int, int]] = []
    members: list[NDArray[np.bool_]] = []
    for v in range(length):
        if v != root:
            cs[v] = leaf[v] = len(up)
            up.append(-1)
            alive.append(True)

    def choose(t: int) -> None:
        inside = cs == t
        rows, cols = np.flatnonzero(~inside), np.flatnonzero(inside)
        le = log_e[np.ix_(rows, cols)]  # [rows, cols]
        lo = log_off[cols]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            # log(E − off) = log E + log1p(−off/E); off ≥ E only by rounding: weight 0.
            reduced = le + np.log1p(-np.exp(lo - le))
        reduced = np.where(lo >= le, -np.inf, reduced)
        reduced = np.where(np.isposinf(le), np.inf, reduced)  # forbidden stays last
        # argmin takes the first minimum in row-major order: the lowest (source, target).
        k = int(np.argmin(reduced))
        a, q = divmod(k, cols.size)
        edges.append((int(rows[a]), int(cols[q])))
        members.append(inside)
        if np.isfinite(reduced[a, q]):
            log_off[cols] = np.logaddexp(log_off[cols], reduced[a, q])

    def find_cycle() -> list[int]:
        mark = [-1] * len(up)
        for s0, live in enumerate(alive):
            if not live or mark[s0] >= 0:
                continue
            s = s0
            while s >= 0 and mark[s] < 0:
                mark[s] = s0
                s = int(cs[edges[s][0]])
            if s >= 0 and mark[s] == s0:
                cycle = [s]
                s = int(cs[edges[s][0]])
                while s != cycle[0]:
                    cycle.append(s)
                    s = int(cs[edges[s][0]])
                return cycle
        return []

    for s in range(len(up)):
        choose(s)
    while cycle := find_cycle():
        t = len(up)
        up.append(-1)
        alive.append(True)
        for s in cycle:
            up[s] = t
            alive[s] = False
        cs[np.isin(cs, cycle)] = t
        choose(t)
    # Expansion, outermost step first: a super-vertex not yet entered keeps its edge.
    entered = [False] * len(up)
    tree = []
    for s in range(len(up) - 1, -1, -1):
        if entered[s]:
            continue
        tree.append(edges[s])
        t = int(leaf[edges[s][1]])
        while t >= 0 and not entered[t]:
            entered[t] = True
            t = up[t]
    return edges, members, tree


def redo_in_log_space(
    u: Tensor, root: int, lengths: Tensor | None, adjacency: Tensor, trace: Any, redo: Tensor
) -> tuple[Tensor, Any]:
    """Overwrite the instances flagged in ``redo`` ``[B]`` by the log-space CLE."""
    n = u.shape[-1]
    uu = u.detach().to(torch.float64).cpu().reshape(-1, n, n).numpy()
    lens = np.full(uu.shape[0], n) if lengths is None else lengths.cpu().reshape(-1).numpy()
    adj = adjacency.cpu().reshape(-1, n, n).numpy().copy()
    edges = trace.edges.cpu().reshape(-1, *trace.edges.shape[-2:]).numpy().copy()
    members = trace.members.cpu().reshape(-1, *trace.members.shape[-2:]).numpy().copy()
    n_steps = trace.n_steps.cpu().reshape(-1).numpy().copy()
    for b in np.flatnonzero(redo.cpu().numpy()):
        size = int(lens[b])
        step_edges, step_members, tree = log_space_cle(uu[b, :size, :size], root)
        adj[b] = 0
        for i, j in tree:
            adj[b, i, j] = 1
        edges[b], members[b] = -1, False
        n_steps[b] = len(step_edges)
        edges[b, : len(step_edges)] = step_edges
        members[b, : len(step_edges), :size] = step_members
    shape, device = u.shape[:-2], u.device

    def back(x: NDArray[Any], core: tuple[int, ...]) -> Tensor:
        return torch.from_numpy(x).reshape((*shape, *core)).to(device)

    new = type(trace)(
        back(edges, edges.shape[1:]), back(members, members.shape[1:]), back(n_steps, ())
    )
    return back(adj, (n, n)).to(adjacency.dtype), new


# Under torch.compile the redo is one opaque call: whether an instance needs it
# is read on the host, where the graph cannot branch. The outputs are fresh
# tensors (an op's outputs may not alias its inputs).
@torch.library.custom_op("structgrad::arborescence_redo", mutates_args=())
def redo_op(
    u: Tensor,
    root: int,
    lengths: Tensor | None,
    adjacency: Tensor,
    edges: Tensor,
    members: Tensor,
    n_steps: Tensor,
    redo: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`redo_in_log_space` on the trace's fields (copies of them if no instance needs it)."""
    if not bool(redo.any()):
        return adjacency.clone(), edges.clone(), members.clone(), n_steps.clone()
    trace = ArborescenceTrace(edges, members, n_steps)
    adjacency, trace = redo_in_log_space(u, root, lengths, adjacency, trace, redo)
    return adjacency, *trace


# Fake outputs: shaped like the adjacency and the three trace fields it gets.
redo_op.register_fake(lambda u, root, lengths, *fields: tuple(map(torch.empty_like, fields[:4])))
