"""Edge layouts: NRI's directed off-diagonal order, ``[n, n]`` matrices, upper triangles.

NRI orders the ``E = n(n−1)`` directed pairs row-major over the off-diagonal
entries of an ``[n, n]`` matrix: edge ``e`` is ``(i, j)`` with ``i`` the
**receiver** (``rel_rec``) and ``j`` the **sender** (``rel_send``), ``i ≠ j``.
The spanning-tree and k-subset structures read the strict upper triangle of a
symmetric matrix, in ``triu_indices(n, n, 1)`` order (the SST code's
undirected edge order).

References:
    Kipf et al., "Neural Relational Inference for Interacting Systems", ICML
    2018, https://arxiv.org/abs/1802.04687.
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (§2.1 of the notes).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "as_edge_types",
    "edges_to_matrix",
    "matrix_to_edges",
    "matrix_to_upper",
    "n_nodes_from_edges",
    "off_diagonal_indices",
    "symmetrize",
    "upper_to_matrix",
]


def n_nodes_from_edges(n_edges: int) -> int:
    """The ``n`` with ``n(n−1) = n_edges``.

    Raises:
        ValueError: if ``n_edges`` is not of that form with ``n ≥ 2``.
    """
    n = (1 + math.isqrt(1 + 4 * n_edges)) // 2
    if n < 2 or n * (n - 1) != n_edges:
        raise ValueError(f"{n_edges} is not n(n-1) directed edges for any n >= 2")
    return n


def off_diagonal_indices(n: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Receiver and sender index of each directed edge in NRI order.

    Args:
        n: number of nodes.
        device: device of the result.

    Returns:
        ``(receivers, senders)``, two int64 ``[n(n−1)]`` tensors.
    """
    off = ~torch.eye(n, dtype=torch.bool, device=device)
    receivers, senders = torch.nonzero(off, as_tuple=True)  # row-major: NRI's order
    return receivers, senders


def edges_to_matrix(edges: Tensor, *, channels: bool = False) -> Tensor:
    """Directed edge values ``[..., n(n−1)]`` to a matrix ``[..., n, n]`` (zero diagonal).

    Entry ``[..., i, j]`` is the value of the edge with receiver ``i`` and sender ``j``.

    Args:
        edges: ``[..., n(n−1)]``, or ``[..., n(n−1), C]`` with ``channels``.
        channels: a trailing channel dim (kept: ``[..., n, n, C]``).

    Returns:
        ``[..., n, n]`` (or ``[..., n, n, C]``).
    """
    if channels:
        return edges_to_matrix(edges.movedim(-1, 0)).movedim(0, -1)
    n = n_nodes_from_edges(edges.shape[-1])
    off = ~torch.eye(n, dtype=torch.bool, device=edges.device)
    out = edges.new_zeros((*edges.shape[:-1], n, n))
    # Boolean-mask assignment fills the True entries row-major: NRI's order.
    out[..., off] = edges
    return out


def matrix_to_edges(matrix: Tensor, *, channels: bool = False) -> Tensor:
    """A matrix ``[..., n, n]`` to directed edge values ``[..., n(n−1)]`` in NRI order.

    Args:
        matrix: ``[..., n, n]``, or ``[..., n, n, C]`` with ``channels``.
        channels: a trailing channel dim (kept: ``[..., n(n−1), C]``).

    Returns:
        ``[..., n(n−1)]`` (or ``[..., n(n−1), C]``).
    """
    if channels:
        return matrix_to_edges(matrix.movedim(-1, 0)).movedim(0, -1)
    n = matrix.shape[-1]
    if matrix.ndim < 2 or matrix.shape[-2] != n:
        raise ValueError(f"expected [..., n, n], got {tuple(matrix.shape)}")
    off = ~torch.eye(n, dtype=torch.bool, device=matrix.device)
    return matrix[..., off]


def symmetrize(matrix: Tensor) -> Tensor:
    """``(M + Mᵀ) / 2`` over the last two dims (the SST code's ``maybe_make_logits_symmetric``)."""
    return 0.5 * (matrix + matrix.transpose(-1, -2))


def matrix_to_upper(matrix: Tensor) -> Tensor:
    """Strict upper triangle ``[..., n(n−1)/2]`` of ``[..., n, n]`` in ``triu_indices`` order."""
    n = matrix.shape[-1]
    rows, cols = torch.triu_indices(n, n, 1, device=matrix.device)
    return matrix[..., rows, cols]


def upper_to_matrix(upper: Tensor, n: int) -> Tensor:
    """Symmetric ``[..., n, n]`` (zero diagonal) from upper-triangle values ``[..., n(n−1)/2]``."""
    if upper.shape[-1] != n * (n - 1) // 2:
        want = n * (n - 1) // 2
        raise ValueError(f"expected {want} upper-triangle values, got {upper.shape[-1]}")
    rows, cols = torch.triu_indices(n, n, 1, device=upper.device)
    out = upper.new_zeros((*upper.shape[:-1], n, n))
    out[..., rows, cols] = upper
    return out + out.transpose(-1, -2)


def as_edge_types(edges: Tensor, edge_types: int) -> Tensor:
    """Edge indicators ``[..., E]`` to the decoder's edge-type weights ``[..., E, C]``.

    ``C = 2`` stacks ``[1 − x, x]`` ("no edge", "edge") as the SST code does;
    ``C = 1`` is ``x[..., None]``.

    Args:
        edges: ``[..., E]`` edge weights in ``[0, 1]`` (hard or relaxed).
        edge_types: 1 or 2.

    Returns:
        ``[..., E, edge_types]``.
    """
    if edge_types == 1:
        return edges.unsqueeze(-1)
    if edge_types == 2:
        return torch.stack([1.0 - edges, edges], dim=-1)
    raise ValueError(f"edge_types must be 1 or 2 for edge indicators, got {edge_types}")
