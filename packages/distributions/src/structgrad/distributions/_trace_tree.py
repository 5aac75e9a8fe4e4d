"""Recursive Gumbel-max spanning trees: Kruskal's trace in step form.

Kruskal on the utilities ``U = θ + G`` (only the strict upper triangle is
read) adds, at step ``t``, the best edge joining two different components.
On exponentials ``E = exp(−U)`` that edge is the argmin over the edges between
different components, so (Struminsky et al. 2021, §3)

    log p(T) = Σ_t [ θ_{e_t} − logsumexp_{(u, v) joins two components before t} θ_uv ].

Kruskal only compares utilities, so it runs on ``U`` directly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._trace import Tracing, check_trace_lengths

__all__ = ["SpanningTreeTracing", "tree_solve", "tree_steps", "tree_used"]


def tree_solve(u: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
    """Maximum spanning tree of ``U`` and its Kruskal trace.

    Args:
        u: ``[*, n, n]`` utilities (only ``u < v`` entries are read).
        lengths: optional ``[*]`` int64 graph sizes.

    Returns:
        The symmetric 0/1 adjacency ``[*, n, n]`` in ``u``'s dtype and the
        :class:`structgrad.solvers.SpanningTreeTrace` (torch, ``u``'s device).
    """
    return solvers.max_spanning_tree(u, lengths=lengths, return_trace=True)


def tree_steps(
    trace: Any, event: tuple[int, ...], lengths: Tensor | None = None, *, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Kruskal's trace as ``(chosen [*, n-1], candidates [*, n-1, n*n])``.

    Step ``t`` chooses the edge ``u*n + v`` (``-1`` on padded steps); its
    candidates are the upper-triangle edges whose endpoints lie in different
    components before ``t``. Vertices beyond a graph's length have component
    ``-1`` in the trace, which excludes them; ``lengths`` is only checked
    against them.
    """
    n = event[-1]
    edges = torch.as_tensor(trace.edges, device=device)  # [*, S, 2]
    comps = torch.as_tensor(trace.components, device=device)  # [*, S, n]
    if comps.shape[-2:-1] == (n - 1,) and n > 1:
        # The vertices labelled before step 0 (a one-vertex graph has no step 0).
        drawn = (comps[..., 0, :] >= 0).sum(-1).clamp(min=1)
        check_trace_lengths(drawn, lengths, n, "spanning_tree")
    valid = edges[..., 0] >= 0
    chosen = torch.where(valid, edges[..., 0] * n + edges[..., 1], -1)
    cu, cv = comps.unsqueeze(-1), comps.unsqueeze(-2)  # [*, S, n, 1], [*, S, 1, n]
    upper = torch.ones(n, n, dtype=torch.bool, device=device).triu(1)
    candidates = (cu >= 0) & (cv >= 0) & (cu != cv) & upper
    return chosen, candidates.flatten(-2)


def tree_used(
    event: tuple[int, ...], device: torch.device, lengths: Tensor | None = None
) -> Tensor:
    """Entries Kruskal reads: the strict upper triangle inside the length.

    Returns:
        bool ``[n, n]``, or ``[*, n, n]`` with ``lengths``.
    """
    n = event[-1]
    upper = torch.ones(n, n, dtype=torch.bool, device=device).triu(1)
    if lengths is None:
        return upper
    within = torch.arange(n, device=device) < lengths.unsqueeze(-1)  # [*, n]
    return upper & within.unsqueeze(-1) & within.unsqueeze(-2)


class SpanningTreeTracing(Tracing):
    """Spanning trees: Kruskal's trace (:func:`tree_solve`, :func:`tree_steps`)."""

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        return tree_solve(u, opts.get("lengths"))

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        return tree_steps(trace, event_shape, opts.get("lengths"), device=device)

    def trace_used(
        self, event_shape: tuple[int, ...], device: torch.device, **opts: Any
    ) -> Tensor | None:
        return tree_used(event_shape, device, opts.get("lengths"))
