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
from typing import Any

import torch
from torch import Tensor

from structgrad.distributions.checks import check_dense, check_int, check_real

__all__ = [
    "as_edge_types",
    "check_probability",
    "edges_to_matrix",
    "matrix_to_edges",
    "matrix_to_upper",
    "n_nodes_from_edges",
    "off_diagonal_indices",
    "symmetrize",
    "tensor_arg",
    "upper_to_matrix",
]


def tensor_arg(x: Any, name: str, min_ndim: int, *, square: bool = False) -> Tensor:
    """``x`` if it is a real (not complex) tensor of rank ``>= min_ndim`` (square last dims).

    Shapes and types only: these helpers run at every training step, so they
    never read values (NaN in gives NaN out).

    Raises:
        TypeError: for a non-tensor, a complex, sparse, meta or float8 tensor.
        ValueError: for a rank or shape that does not fit.
    """
    if not isinstance(x, Tensor) or x.is_complex():
        got = f"complex {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{name} expects a real torch.Tensor, got {got}")
    check_dense(x, name)
    if x.is_floating_point() and x.element_size() == 1:  # float8: fails inside an op
        raise TypeError(f"{name} has dtype {x.dtype}, which is not supported")
    if x.ndim < min_ndim or (square and x.shape[-1] != x.shape[-2]):
        want = "[..., n, n]" if square else f"rank >= {min_ndim}"
        raise ValueError(f"{name} must be {want}, got shape {tuple(x.shape)}")
    return x


def check_probability(p: Any, name: str = "dropout") -> float:
    """A probability in ``[0, 1)`` (a dropout rate) as a float."""
    p = check_real(p, name, lo=0.0)
    if p >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p}")
    return p


def n_nodes_from_edges(n_edges: int) -> int:
    """The ``n`` with ``n(n−1) = n_edges``.

    Raises:
        ValueError: if ``n_edges`` is not of that form with ``n ≥ 2``.
    """
    n_edges = check_int(n_edges, "n_edges", 0)
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
    off = ~torch.eye(check_int(n, "n", 0, 100_000), dtype=torch.bool, device=device)
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
    tensor_arg(edges, "edges", 2 if channels else 1)
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
    tensor_arg(matrix, "matrix", 3 if channels else 2)
    if channels:
        return matrix_to_edges(matrix.movedim(-1, 0)).movedim(0, -1)
    n = tensor_arg(matrix, "matrix", 2, square=True).shape[-1]
    off = ~torch.eye(n, dtype=torch.bool, device=matrix.device)
    return matrix[..., off]


def symmetrize(matrix: Tensor) -> Tensor:
    """``(M + Mᵀ) / 2`` over the last two dims (the SST code's ``maybe_make_logits_symmetric``)."""
    tensor_arg(matrix, "matrix", 2, square=True)
    return 0.5 * (matrix + matrix.transpose(-1, -2))


def matrix_to_upper(matrix: Tensor) -> Tensor:
    """Strict upper triangle ``[..., n(n−1)/2]`` of ``[..., n, n]`` in ``triu_indices`` order."""
    n = tensor_arg(matrix, "matrix", 2, square=True).shape[-1]
    rows, cols = torch.triu_indices(n, n, 1, device=matrix.device)
    return matrix[..., rows, cols]


def upper_to_matrix(upper: Tensor, n: int) -> Tensor:
    """Symmetric ``[..., n, n]`` (zero diagonal) from upper-triangle values ``[..., n(n−1)/2]``."""
    tensor_arg(upper, "upper", 1)
    n = check_int(n, "n", 0, 100_000)
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
    tensor_arg(edges, "edges", 0)
    if not edges.is_floating_point():  # 0/1 indicators given as bool or int
        edges = edges.to(torch.get_default_dtype())
    if edge_types == 1:
        return edges.unsqueeze(-1)
    if edge_types == 2:
        return torch.stack([1.0 - edges, edges], dim=-1)
    raise ValueError(f"edge_types must be 1 or 2 for edge indicators, got {edge_types}")
