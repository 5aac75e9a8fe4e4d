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
by a log-space twin of the solver (:mod:`._trace_arborescence_log`), so the law stays exact
up to rounding at any scale.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._checks_options import validation_enabled
from ._trace import Tracing, check_trace_lengths
from ._trace_arborescence_log import redo_in_log_space, redo_op

__all__ = [
    "ArborescenceTracing",
    "arborescence_solve",
    "arborescence_steps",
    "arborescence_used",
    "neg_exponentials",
]

# E' = exp(x) with x = (max_finite U − U) − _OFFSET ≥ −_OFFSET: the smallest weight,
# e^-700 ≈ 1e-304, is still a normal float64 (> 2.2e-308), so no weight that CLE
# is likely to pick underflows.
_OFFSET = 700.0
# The solver rescales every score of a batch by a power of two when one exceeds
# 2**512 in magnitude, which would push the e^-700 weights into subnormals. Weights
# above e^354 < 2**511 are therefore sent to +inf (score -inf), and such instances are
# then redone in log space by `redo_in_log_space` (see `arborescence_solve`).
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


def arborescence_solve(
    u: Tensor, root: int = 0, lengths: Tensor | None = None
) -> tuple[Tensor, Any]:
    """Minimum arborescence of ``E = exp(−U)`` and its CLE contraction trace.

    The compiled solver runs on ``−c·exp(−U)`` (:func:`neg_exponentials`); the rare
    instances whose read utilities span more than its range (> 1054 nats, e.g.
    ``θ = ±1e4``) are redone by :func:`.redo_in_log_space`, which never exponentiates.

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
    if torch.compiler.is_compiling():  # the graph cannot branch on redo: one opaque op
        adjacency, *fields = redo_op(u.detach(), root, lengths, adjacency, *trace, redo)
        trace = type(trace)(*fields)
    elif redo.any():
        adjacency, trace = redo_in_log_space(u, root, lengths, adjacency, trace, redo)
    return adjacency.to(u.dtype), trace


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
    trace (every non-root one has its own step); ``lengths`` is only checked
    against them.

    Raises:
        ValueError: if the trace was drawn with another root or other
            ``lengths`` (value checks, see ``set_validation``).
    """
    n = event[-1]
    edges = torch.as_tensor(trace.edges, device=device)  # [*, S, 2]
    members = torch.as_tensor(trace.members, device=device).bool()  # [*, S, n]
    if validation_enabled() and members[..., root].any():  # a value check (eager)
        raise ValueError(f"arborescence: the trace was not drawn with root {root}")
    valid = edges[..., 0] >= 0
    chosen = torch.where(valid, edges[..., 0] * n + edges[..., 1], -1)
    within = members.any(-2)  # [*, n]: the non-root vertices below the length
    check_trace_lengths(within.sum(-1) + 1, lengths, n, "arborescence")
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


class ArborescenceTracing(Tracing):
    """Arborescences: CLE's contraction trace on ``E`` (:func:`arborescence_solve`, ...)."""

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        return arborescence_solve(u, opts.get("root", 0), opts.get("lengths"))

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        root, lengths = opts.get("root", 0), opts.get("lengths")
        return arborescence_steps(trace, event_shape, root, lengths, device=device)

    def trace_used(
        self, event_shape: tuple[int, ...], device: torch.device, **opts: Any
    ) -> Tensor | None:
        return arborescence_used(event_shape, device, opts.get("root", 0), opts.get("lengths"))
