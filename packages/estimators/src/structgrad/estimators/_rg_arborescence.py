"""Recursive Gumbel-max arborescences: Chu-Liu/Edmonds on exponentials.

Chu-Liu/Edmonds (CLE) **sums** edge weights, so, unlike the order-only
structures, it must run on the exponentials ``E = exp(−U)`` themselves: the
recursive-Gumbel arborescence is the *minimum* arborescence of ``E``, i.e.
``max_arborescence(−E)``. Each CLE step takes, for one super-vertex, the edge
entering it with the smallest *reduced* weight; by memorylessness the reduced
weights of the losers are again independent exponentials, so
(Struminsky et al. 2021, §3.1)

    log p(T) = Σ_steps [ θ_{e_s} − logsumexp_{(i, j): i ∉ M_s, j ∈ M_s} θ_ij ].

This is a different law from perturb-and-MAP (the *maximum* arborescence of
``θ + G``), whose probabilities are intractable.

Numerics: ``exp(−U)`` over/underflows for large ``|θ|``. The minimum
arborescence, and every decision of CLE, is unchanged when all weights of an
instance are multiplied by one positive constant, so each instance is
rescaled before exponentiating (see :func:`neg_exponentials`); instances whose
utilities span more than float64's exponent range (e.g. ``θ = ±1e4``) are redone
by a log-space twin of the solver (:func:`_log_space_cle`), so the law stays exact
up to rounding at any scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

import structgrad.solvers as solvers

__all__ = ["arborescence_solve", "arborescence_steps", "arborescence_used", "neg_exponentials"]

# E' = exp(x) with x = (max_finite U − U) − _OFFSET ≥ −_OFFSET: the smallest weight,
# e^-700 ≈ 1e-304, is still a normal float64 (> 2.2e-308), so no weight that CLE
# is likely to pick underflows.
_OFFSET = 700.0
# The solver rescales every score of a batch by a power of two when one exceeds
# 2**512 in magnitude, which would push the e^-700 weights into subnormals. Weights
# above e^354 < 2**511 are therefore sent to +inf (score -inf), and such instances are
# then redone in log space by `_log_space_cle` (see `arborescence_solve`).
_MAX_EXPONENT = 354.0


def neg_exponentials(u: Tensor, used: Tensor | None = None) -> Tensor:
    """Scores ``−c·exp(−U)`` for CLE, with a per-instance ``c > 0``, in float64.

    ``c = exp(max U − 700)``, the maximum over the finite entries CLE reads: the
    weights span ``[e^-700, e^354]`` exactly when those utilities of an instance
    span less than 1054 nats (e.g. ``|θ| ≲ 500``); utilities further below the
    instance's maximum become ``-inf`` scores, which :func:`arborescence_solve`
    detects (it then redoes the instance in log space). Masked entries
    (``U = -inf``) give ``-inf``.

    Args:
        u: ``[*, n, n]`` utilities ``θ + G``.
        used: optional bool mask broadcastable to ``u`` of the entries CLE reads
            (unread entries, e.g. padding, must not set the scale).

    Returns:
        ``[*, n, n]`` float64 scores for ``max_arborescence``.
    """
    u64 = u.to(torch.float64)
    neg_inf = torch.tensor(-torch.inf, dtype=torch.float64, device=u.device)
    read = torch.isfinite(u64) if used is None else torch.isfinite(u64) & used
    top = torch.where(read, u64, neg_inf).amax((-2, -1), keepdim=True)
    # An instance with no finite entry: shift by 0 (everything is -inf anyway).
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    x = (top - u64) - _OFFSET  # U = -inf gives x = +inf, hence score -inf below
    x = torch.where(x > _MAX_EXPONENT, torch.inf, x)
    return -torch.exp(x)


def _log_space_cle(
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


def arborescence_solve(
    u: Tensor, root: int = 0, lengths: Tensor | None = None
) -> tuple[Tensor, Any]:
    """Minimum arborescence of ``E = exp(−U)`` and its CLE contraction trace.

    The compiled solver runs on ``−c·exp(−U)`` (:func:`neg_exponentials`); the rare
    instances whose read utilities span more than its range (> 1054 nats, e.g.
    ``θ = ±1e4``) are redone by :func:`_log_space_cle`, which never exponentiates.

    Args:
        u: ``[*, n, n]`` utilities, ``[i, j]`` for the edge ``i -> j``.
        root: root vertex.
        lengths: optional ``[*]`` int64 graph sizes.

    Returns:
        The 0/1 adjacency ``[*, n, n]`` in ``u``'s dtype and the
        :class:`structgrad.solvers.ArborescenceTrace` (torch, ``u``'s device).
    """
    n = u.shape[-1]
    used = arborescence_used((n, n), u.device, root, lengths)
    scores = neg_exponentials(u, used)
    adjacency, trace = solvers.max_arborescence(
        scores, root=root, lengths=lengths, return_trace=True
    )
    # A finite read utility sent to -inf means the instance overflowed the range.
    clipped = (scores == -torch.inf) & torch.isfinite(u) & used
    redo = clipped.flatten(-2).any(-1).flatten()  # [B]
    if redo.any():
        adjacency, trace = _redo(u, root, lengths, adjacency, trace, redo)
    return adjacency.to(u.dtype), trace


def _redo(
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
        step_edges, step_members, tree = _log_space_cle(uu[b, :size, :size], root)
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


def arborescence_steps(
    trace: Any,
    event: tuple[int, ...],
    root: int = 0,
    lengths: Tensor | None = None,
    *,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """The contraction trace as ``(chosen [*, S], candidates [*, S, n*n])``.

    Step ``s`` chooses its edge ``i*n + j`` (``-1`` for rows ``s >= n_steps``);
    its candidates are the edges ``i -> j`` with ``i`` outside ``members[s]``
    (root included), ``j`` inside, both below the length. Padded rows have no
    members, hence no candidates. The vertices below the length are read off the
    trace (every non-root one has its own step), so ``lengths`` is not needed.

    Raises:
        ValueError: if the trace was drawn with another root.
    """
    n = event[-1]
    edges = torch.as_tensor(trace.edges, device=device)  # [*, S, 2]
    members = torch.as_tensor(trace.members, device=device).bool()  # [*, S, n]
    if members[..., root].any():
        raise ValueError(f"arborescence: the trace was not drawn with root {root}")
    valid = edges[..., 0] >= 0
    chosen = torch.where(valid, edges[..., 0] * n + edges[..., 1], -1)
    within = members.any(-2)  # [*, n]: the non-root vertices below the length
    within[..., root] = True
    within = within.unsqueeze(-2)  # [*, 1, n]
    sources = ~members & within  # [*, S, n]
    candidates = sources.unsqueeze(-1) & members.unsqueeze(-2)  # [*, S, n(i), n(j)]
    return chosen, candidates.flatten(-2)


def arborescence_used(
    event: tuple[int, ...], device: torch.device, root: int = 0, lengths: Tensor | None = None
) -> Tensor:
    """Entries CLE reads: off-diagonal edges not into the root, inside the length.

    Returns:
        bool ``[n, n]``, or ``[*, n, n]`` with ``lengths``.
    """
    n = event[-1]
    used = ~torch.eye(n, dtype=torch.bool, device=device)
    used[:, root] = False
    if lengths is None:
        return used
    within = torch.arange(n, device=device) < lengths.unsqueeze(-1)  # [*, n]
    return used & within.unsqueeze(-1) & within.unsqueeze(-2)
