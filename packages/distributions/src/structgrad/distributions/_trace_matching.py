"""Recursive Gumbel-max perfect matchings: the greedy crossing trace in step form.

The crossing matching takes, ``n`` times, the largest still-available entry of
``U = θ + G`` and crosses out its row and column; on ``E = exp(−U)`` it is the
argmin over the surviving rows × columns, so (Struminsky et al. 2021, §3.3)

    log p(T) = Σ_t [ θ_{r_t c_t} − logsumexp_{r, c not taken before t} θ_rc ].

The law is on the ordered trace: several orders give the same matching.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._trace import Tracing

__all__ = ["MatchingTracing", "matching_solve", "matching_steps"]


def matching_solve(u: Tensor) -> tuple[Tensor, Any]:
    """Crossing matching of ``U`` (``[*, n, n]``) and its trace (torch, ``u``'s device)."""
    return solvers.crossing_matching(u, return_trace=True)


def matching_steps(
    trace: Any, event: tuple[int, ...], *, device: torch.device
) -> tuple[Tensor, Tensor]:
    """The crossing trace as ``(chosen [*, n], candidates [*, n, n*n])``.

    Step ``t`` chooses ``r_t * n + c_t``; its candidates are the pairs whose row
    and column were both still free before ``t``.
    """
    n = event[-1]
    edges = torch.as_tensor(trace.edges, device=device)  # [*, n, 2]
    rows, cols = edges[..., 0], edges[..., 1]
    steps = torch.arange(n, device=device).expand_as(rows)
    # row_step[r] = the step at which row r was taken (a permutation of 0..n-1).
    row_step = torch.empty_like(rows).scatter_(-1, rows, steps)
    col_step = torch.empty_like(cols).scatter_(-1, cols, steps)
    t = torch.arange(n, device=device).view(n, 1, 1)
    free = (row_step.unsqueeze(-2).unsqueeze(-1) >= t) & (
        col_step.unsqueeze(-2).unsqueeze(-2) >= t
    )  # [*, S=n, n rows, n cols]
    return rows * n + cols, free.flatten(-2)


class MatchingTracing(Tracing):
    """Perfect matchings: the greedy crossing trace (:func:`matching_solve`, ...)."""

    trace_ignores_masks = (
        "the greedy crossing matching does not look ahead: once no finite pair is left it "
        "takes a -inf one (1 draw in 6 of a 3 x 3 with one -inf entry); use a perturbation "
        "method or sst, whose MAP avoids them"
    )

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        return matching_solve(u)

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        return matching_steps(trace, event_shape, device=device)
