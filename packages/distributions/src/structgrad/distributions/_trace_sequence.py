"""Recursive Gumbel-max binary trees: the divide-and-conquer split trace in step form.

The tree splits ``[0, L)`` at the argmax of ``U = θ + G`` and recurses on both
sides; element ``i`` is the argmax (the argmin of ``E = exp(−U)``) of its span
``[lo_i, hi_i)``, so (Struminsky et al. 2021, §3.2)

    log p(T) = Σ_{i < L} [ θ_i − logsumexp_{lo_i ≤ j < hi_i} θ_j ].

Here trace and tree determine each other (the tree is a Cartesian tree).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._trace import Tracing, check_trace_lengths

__all__ = ["BinaryTreeTracing", "binary_tree_solve", "binary_tree_steps", "binary_tree_used"]


def binary_tree_solve(u: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
    """Split tree of ``U`` (``[*, n]``): adjacency ``[*, n, n]`` (``[parent, child]``) and trace."""
    return solvers.binary_tree(u, lengths=lengths, return_trace=True)


def binary_tree_steps(
    trace: Any, event: tuple[int, ...], lengths: Tensor | None = None, *, device: torch.device
) -> tuple[Tensor, Tensor]:
    """The split trace as ``(chosen [*, n], candidates [*, n, n])``.

    Step ``i`` chooses element ``i`` among its span. Padded elements (depth
    ``-1``, span ``(i, i+1)``) become padded steps (``chosen = -1``), so they
    contribute exactly 0 even when their score is ``-inf``.
    """
    n = event[-1]
    spans = torch.as_tensor(trace.spans, device=device)  # [*, n, 2]
    depth = torch.as_tensor(trace.depth, device=device)  # [*, n]
    if depth.shape[-1:] != (n,) or spans.shape[-2:] != (n, 2):
        raise ValueError(
            f"binary_tree: the trace was drawn for n = {depth.shape[-1]}, the scores have n = {n}"
        )
    check_trace_lengths((depth >= 0).sum(-1), lengths, n, "binary_tree")
    j = torch.arange(n, device=device)
    candidates = (spans[..., 0:1] <= j) & (j < spans[..., 1:2])  # [*, n, n]
    chosen = torch.where(depth >= 0, j, -1)
    return chosen, candidates


def binary_tree_used(
    event: tuple[int, ...], device: torch.device, lengths: Tensor | None = None
) -> Tensor:
    """Entries read: those inside the length (bool ``[n]`` or ``[*, n]``)."""
    n = event[-1]
    if lengths is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    return torch.arange(n, device=device) < lengths.unsqueeze(-1)


class BinaryTreeTracing(Tracing):
    """Binary trees: the argmax-split trace (:func:`binary_tree_solve`, ...)."""

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        return binary_tree_solve(u, opts.get("lengths"))

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        return binary_tree_steps(trace, event_shape, opts.get("lengths"), device=device)

    def trace_used(
        self, event_shape: tuple[int, ...], device: torch.device, **opts: Any
    ) -> Tensor | None:
        return binary_tree_used(event_shape, device, opts.get("lengths"))
