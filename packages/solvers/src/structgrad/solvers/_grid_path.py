"""Shortest path on grids of non-negative vertex costs (the Warcraft maps setting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import kernel
from ._bridge import traced_op
from ._validate import batched

__all__ = ["grid_shortest_path"]


def _check_costs(flat: np.ndarray) -> None:
    if flat.min() < 0:
        raise ValueError("costs must be non-negative (Dijkstra needs non-negative vertex costs)")
    # A path visits at most H * W cells: its float64 total must not overflow, or
    # distances would compare equal (inf) and the predecessors would break.
    cells = flat.shape[1] * flat.shape[2]
    if not np.isfinite(float(flat.max()) * cells):
        raise ValueError(
            f"costs too large: a path of up to {cells} cells could cost more than "
            f"float64 holds (max cost {float(flat.max()):.3g})"
        )


def grid_shortest_path(costs: Any) -> Any:
    """Cheapest 8-neighbour path from the top-left to the bottom-right cell.

    The cost of a path is the sum of the costs of the cells it visits, both
    ends included. Solved by Dijkstra's algorithm in float64; among paths of
    equal cost the one found is deterministic (cells are settled in order of
    (distance, row-major index) and a predecessor changes only on a strict
    improvement). A ``1 x 1`` grid gives the one-cell path.

    Args:
        costs: ``[..., H, W]`` finite, non-negative vertex costs (numpy or torch).

    Returns:
        The path mask ``[..., H, W]`` (1 on the cells of the path) in the input's
        floating dtype.

    Raises:
        ValueError: on NaN, infinite or negative costs, costs so large that a
            path's total could overflow float64, or a rank below 2. The values
            are not read on a CUDA tensor (its device twin: no host synchronisation).

    References:
        Vlastelica, Paulus et al., "Differentiation of Blackbox Combinatorial
        Solvers", ICLR 2020, https://arxiv.org/abs/1912.02175 (Warcraft maps);
        Niepert et al., "Implicit MLE", NeurIPS 2021, https://arxiv.org/abs/2106.01798.
    """
    op = traced_op(costs, "grid_shortest_path")
    if op is not None:
        return op(costs)
    return _on_host(costs)


def _on_host(costs: Any) -> Any:
    """The numpy path of :func:`grid_shortest_path` (torch tensors convert through the host)."""
    inp = batched(costs, "costs", core_ndim=2, min_size=1, allow_neg_inf=False, dims="[..., H, W]")
    flat = inp.flat
    if flat.size:
        _check_costs(flat)
    mask = np.zeros_like(flat)
    kernel("_gridpath", "_gridpath_ref").dijkstra(flat, mask)
    return inp.bridge.solution(mask.reshape((*inp.batch_shape, *flat.shape[1:])))
