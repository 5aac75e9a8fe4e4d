"""Directed Matrix-Tree marginals with a closed-form backward pass.

For log-potentials ``a`` of edges ``i → j`` (rows may include virtual roots
beyond ``n``), the in-degree Laplacian ``L = diag(Σ_i w_ij) − W`` with
``w = exp(a)`` and the rows/columns of the removed vertices (the root, padding)
replaced by the identity has ``log Z = log det L``, hence (``M = L⁻¹`` with the
removed rows and columns zeroed, ``M`` of a virtual row being 0)::

    μ_ij = ∂ log Z / ∂ a_ij = w_ij (M_jj − M_ji).

Differentiating once more (``dM = −M dL M``) gives the vector-Jacobian
product of the marginals with an upstream ``G`` in closed form: with
``H = G ⊙ w`` and ``L_H`` its in-degree Laplacian built like ``L``,
``Q = M L_H M`` and

    ∂⟨G, μ⟩ / ∂a_ij = G_ij μ_ij − w_ij (Q_jj − Q_ji),

two matrix products instead of autograd through an inverse (Koo et al.
2007 give the first identity; the second is its derivative). Undirected
spanning trees are the symmetric case: both directions of an edge carry its
weight and the edge marginal is the sum of the two directed ones.

References:
    Koo, Globerson, Carreras and Collins, "Structured Prediction Models via the
    Matrix-Tree Theorem", EMNLP 2007.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["directed_marginals"]


def _laplacian(w: Tensor, fixed: Tensor, removed: Tensor) -> Tensor:
    """In-degree Laplacian ``[..., n, n]`` of ``w [..., m, n]``, zero on ``fixed``.

    ``removed`` vertices get a 1 on the diagonal (their identity row/column).
    """
    n = w.shape[-1]
    lap = torch.diag_embed(w.sum(-2) + removed.to(w.dtype)) - w[..., :n, :]
    return lap.masked_fill(fixed & ~torch.eye(n, dtype=torch.bool, device=w.device), 0.0)


def _padded_transpose(mat: Tensor, m: int) -> Tensor:
    """``mat^T`` ``[..., n, n]`` padded with zero rows to ``[..., m, n]``."""
    out = mat.transpose(-1, -2)
    if m == mat.shape[-1]:
        return out
    pad = out.new_zeros((*out.shape[:-2], m - out.shape[-2], out.shape[-1]))
    return torch.cat([out, pad], dim=-2)


def _fixed(removed: Tensor) -> Tensor:
    """``[..., n, n]`` entries in a removed vertex's row or column."""
    return removed.unsqueeze(-1) | removed.unsqueeze(-2)


def _forward(a: Tensor, removed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    w = torch.exp(a)
    fixed = _fixed(removed)
    lap = _laplacian(w, fixed, removed)
    inv, info = torch.linalg.inv_ex(lap)
    if (info != 0).any():
        raise ValueError("the finite-score edges do not connect every graph")
    inv = inv.masked_fill(fixed, 0.0)  # L⁻¹ of the minor, 0 elsewhere
    diag = torch.diagonal(inv, dim1=-2, dim2=-1)
    mu = w * (diag.unsqueeze(-2) - _padded_transpose(inv, a.shape[-2]))
    return mu, w, inv


class _DirectedMarginals(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, removed: Tensor) -> Tensor:
        mu, w, inv = _forward(a, removed)
        ctx.save_for_backward(a, removed, mu, w, inv)
        return mu

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        a, removed, mu, w, inv = ctx.saved_tensors
        if torch.is_grad_enabled():
            # Double backward (e.g. a RELAX critic built on this relaxation):
            # recompute differentiably from the input and let autograd go on.
            mu_again = _forward(a, removed)[0]
            (out,) = torch.autograd.grad(mu_again, a, grad, create_graph=True)
            return out, None
        n = a.shape[-1]
        h = grad * w
        # Rows/columns of removed vertices do not matter: M is zero there.
        q = inv @ (torch.diag_embed(h.sum(-2)) - h[..., :n, :]) @ inv
        diag_q = torch.diagonal(q, dim1=-2, dim2=-1)
        # -inf potentials (w = 0) get exactly zero gradient: both terms carry w.
        return grad * mu - w * (diag_q.unsqueeze(-2) - _padded_transpose(q, a.shape[-2])), None


def directed_marginals(a: Tensor, removed: Tensor) -> Tensor:
    """Edge marginals ``[..., m, n]`` of arborescences from log-potentials ``a``.

    Args:
        a: ``[..., m, n]`` float64 log-potentials of edges ``i → j`` (``-inf``:
            absent), already shifted so that ``exp`` cannot overflow; rows
            ``i >= n`` are virtual roots (their column sums enter the diagonal).
        removed: ``[..., n]`` bool vertices whose row and column of the
            Laplacian are deleted (the root; vertices outside the graph).

    Returns:
        ``[..., m, n]`` marginals ``∂ log det L / ∂ a``; differentiable twice.

    Raises:
        ValueError: if a Laplacian is singular (a vertex cannot be reached).
    """
    return _DirectedMarginals.apply(a, removed)
