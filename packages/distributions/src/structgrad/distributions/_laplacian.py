"""Matrix-Tree marginals with a closed-form backward pass.

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
2007 give the first identity; the second is its derivative).

Undirected spanning trees are the symmetric case: both directions of an edge
carry its weight, ``M`` is symmetric, the edge marginal is the sum of the two
directed ones, ``w_ij (M_ii + M_jj − 2 M_ij)``, and the gradient of the shared
edge potential is ``G^s_ij μ_ij − w_ij (Q_ii + Q_jj − 2 Q_ij)`` with
``G^s = G + Gᵀ`` and ``H = G^s ⊙ w``.

Both autograd functions update their temporaries in place: at ``n = 50`` the
elementwise passes, not the ``O(n³)`` products, dominate the time.

References:
    Koo, Globerson, Carreras and Collins, "Structured Prediction Models via the
    Matrix-Tree Theorem", EMNLP 2007.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import structgrad.solvers as solvers
from structgrad.solvers import InvalidScoresError

from ._numerics import tracing

__all__ = ["directed_marginals", "undirected_marginals"]

#: What a singular Laplacian or non-finite marginals of a connected graph mean
#: (the callers check connectivity first), for the error messages.
ILL_CONDITIONED = (
    "the Laplacian is numerically singular: the scores span more than float64 can hold "
    "(a finite max_range prevents that)"
)

#: Removed vertices: none, one vertex for the whole batch, or a ``[..., n]`` mask.
Removed = int | Tensor | None


def _drop(mat: Tensor, removed: Removed, diag: float) -> Tensor:
    """Zero the rows and columns of removed vertices of ``mat`` ``[..., n, n]`` in place.

    Their diagonal entries become ``diag`` (1 in a Laplacian, 0 in its inverse).
    """
    if removed is None:
        return mat
    if isinstance(removed, int):  # O(n) index writes instead of a full masked pass
        mat[..., removed, :] = 0.0
        mat[..., :, removed] = 0.0
        mat[..., removed, removed] = diag
        return mat
    mat.masked_fill_(removed.unsqueeze(-1) | removed.unsqueeze(-2), 0.0)
    if diag:
        mat.diagonal(dim1=-2, dim2=-1).add_(removed.to(mat.dtype), alpha=diag)
    return mat


def _in_laplacian(w: Tensor) -> Tensor:
    """``diag(Σ_i w_ij) − W`` ``[..., n, n]`` of ``w`` ``[..., m, n]`` (rows ``>= n``: virtual)."""
    n = w.shape[-1]
    lap = w[..., :n, :].neg()
    # The self-loop w_jj cancels: -w_jj + Σ_i w_ij.
    lap.diagonal(dim1=-2, dim2=-1).add_(w.sum(-2))
    return lap


#: Largest ``n`` whose Laplacians (on the CPU) are inverted by the batched
#: kernel of structgrad.solvers: one LAPACK call per matrix costs more below
#: (measured 1.6x slower at n = 10, B = 128), less above about 20.
_KERNEL_MAX_N = 16


def _inverse(w: Tensor, removed: Removed) -> Tensor:
    """``M``: the inverse of the Laplacian minor, zero on the removed rows and columns."""
    lap = _drop(_in_laplacian(w), removed, 1.0)
    n = lap.shape[-1]
    if tracing(lap):  # traced: torch's kernel, and a singular minor is not read back
        inv, _ = torch.linalg.inv_ex(lap)
        return _drop(inv, removed, 0.0)
    if lap.device.type == "cpu" and n <= _KERNEL_MAX_N:
        inv = lap.contiguous()  # a fresh temporary: inverted in place
        failed = bool(solvers.inverse_in_place(inv.view(-1, n, n).numpy()).any())
    else:
        inv, info = torch.linalg.inv_ex(lap)
        failed = bool(info.any())
    if failed:
        raise InvalidScoresError(ILL_CONDITIONED)
    return _drop(inv, removed, 0.0)


def _save(ctx: Any, removed: Removed, *tensors: Tensor) -> None:
    """Save ``tensors`` and ``removed`` (a mask is saved as a tensor, others on ``ctx``)."""
    ctx.mask = isinstance(removed, Tensor)
    ctx.removed = None if ctx.mask else removed
    ctx.save_for_backward(*tensors, *((removed,) if ctx.mask else ()))


def _removed_of(ctx: Any, saved: tuple[Tensor, ...]) -> tuple[Removed, tuple[Tensor, ...]]:
    """Inverse of :func:`_save`: ``(removed, tensors)``."""
    if ctx.mask:
        return saved[-1], saved[:-1]
    return ctx.removed, saved


def _directed_reference(a: Tensor, removed: Removed) -> Tensor:
    """Differentiable (autograd) form of the directed marginals: double backward, tests."""
    n = a.shape[-1]
    w = torch.exp(a)
    lap = (
        torch.diag_embed(w.sum(-2))
        - w[..., :n, :]
        + torch.diag_embed(w[..., :n, :].diagonal(dim1=-2, dim2=-1))
    )
    keep = _keep(removed, w)
    lap = lap * keep.unsqueeze(-1) * keep.unsqueeze(-2) + torch.diag_embed(1 - keep)
    inv = torch.linalg.inv(lap) * keep.unsqueeze(-1) * keep.unsqueeze(-2)
    diag = inv.diagonal(dim1=-2, dim2=-1).unsqueeze(-2)
    trans = inv.transpose(-1, -2)
    if a.shape[-2] > n:
        trans = torch.cat([trans, trans.new_zeros((*trans.shape[:-2], a.shape[-2] - n, n))], -2)
    return w * (diag - trans)


def _keep(removed: Removed, like: Tensor) -> Tensor:
    """``[..., n]`` 1.0 for the kept vertices."""
    n = like.shape[-1]
    if removed is None or isinstance(removed, int):
        keep = torch.ones(n, dtype=like.dtype, device=like.device)
        if removed is not None:
            keep[removed] = 0.0
        return keep
    return (~removed).to(like.dtype)


class _DirectedMarginals(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, a: Tensor, removed: Removed, shift: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        n = a.shape[-1]
        # exp of the shifted potentials in one fresh buffer (no autograd node for the shift)
        w = torch.exp(a) if shift is None else torch.sub(a, shift).exp_()
        inv = _inverse(w, removed)
        diag = inv.diagonal(dim1=-2, dim2=-1).unsqueeze(-2)  # [..., 1, n]: M_jj
        # Virtual roots: M is zero on their rows, so w_ij M_jj is all there is.
        edges = torch.mul(w[..., :n, :], diag).addcmul_(
            w[..., :n, :], inv.transpose(-1, -2), value=-1.0
        )
        virtual = w[..., n:, :] * diag
        _save(ctx, removed, a, edges, virtual, w, inv, *(() if shift is None else (shift,)))
        ctx.shifted = shift is not None
        return edges, virtual

    @staticmethod
    def backward(
        ctx: Any, grad_edges: Tensor, grad_virtual: Tensor
    ) -> tuple[Tensor | None, None, None]:
        removed, saved = _removed_of(ctx, ctx.saved_tensors)
        a, edges, virtual, w, inv = saved[:5]
        n = a.shape[-1]
        grad = torch.cat([grad_edges, grad_virtual], -2) if a.shape[-2] > n else grad_edges
        if torch.is_grad_enabled():
            # Double backward (e.g. a RELAX critic built on this relaxation):
            # recompute differentiably from the input and let autograd go on.
            shifted = a - saved[5] if ctx.shifted else a
            (out,) = torch.autograd.grad(
                _directed_reference(shifted, removed), a, grad, create_graph=True
            )
            return out, None, None
        # Rows/columns of removed vertices do not matter: M is zero there.
        q = inv @ _in_laplacian(grad * w) @ inv
        diag_q = q.diagonal(dim1=-2, dim2=-1).unsqueeze(-2)
        # -inf potentials (w = 0) get exactly zero gradient: both terms carry w.
        out = torch.cat([grad_edges * edges, grad_virtual * virtual], -2)
        out.addcmul_(w, diag_q, value=-1.0)
        out[..., :n, :].addcmul_(w[..., :n, :], q.transpose(-1, -2))
        return out, None, None


def _undirected_reference(x: Tensor, removed: Removed, shift: Tensor) -> Tensor:
    """Differentiable form of the undirected marginals from the upper triangle of ``x``."""
    upper = torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device).triu(1)
    sym = torch.where(upper, x, x.transpose(-1, -2)) - shift
    sym = torch.where(upper | upper.T, sym, torch.full_like(sym, -torch.inf))
    directed = _directed_reference(sym, removed)
    return directed + directed.transpose(-1, -2)


class _UndirectedMarginals(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, removed: Removed, shift: Tensor) -> Tensor:
        n = x.shape[-1]
        upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        w = torch.where(upper, x, x.transpose(-1, -2))  # both directions, one pass
        w.sub_(shift).exp_()  # max shift: w <= 1
        w.diagonal(dim1=-2, dim2=-1).zero_()
        inv = _inverse(w, removed)
        d = inv.diagonal(dim1=-2, dim2=-1)
        # w_ij (M_ii + M_jj - M_ij - M_ji): exactly symmetric in floating point
        # (the computed inverse is symmetric only up to round-off).
        mu = (d.unsqueeze(-1) + d.unsqueeze(-2)).sub_(inv + inv.transpose(-1, -2)).mul_(w)
        _save(ctx, removed, x, shift, mu, w, inv)
        return mu

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        removed, (x, shift, mu, w, inv) = _removed_of(ctx, ctx.saved_tensors)
        if torch.is_grad_enabled():
            (out,) = torch.autograd.grad(
                _undirected_reference(x, removed, shift), x, grad, create_graph=True
            )
            return out, None, None
        gs = grad + grad.transpose(-1, -2)
        # q = M L(gs ⊙ w) M = Σ_e c_e (M b_e)(M b_e)ᵀ, formed from the potentials
        # M b_e (column differences of M) rather than as (M L) M: when the scores
        # spread widely, M's entries are large and M b_e's small, and the product
        # order would multiply the rounding of each difference by M again.
        n = w.shape[-1]
        rows, cols = torch.triu_indices(n, n, 1, device=w.device)
        z = inv[..., :, rows] - inv[..., :, cols]  # [..., n, E] potentials M b_e
        q = (z * (gs * w)[..., rows, cols].unsqueeze(-2)) @ z.transpose(-1, -2)
        dq = q.diagonal(dim1=-2, dim2=-1)
        tq = torch.add(dq.unsqueeze(-1) + dq.unsqueeze(-2), q, alpha=-2.0).mul_(w)
        # Forbidden edges (w = 0) get exactly zero: both terms carry w.
        return gs.mul_(mu).sub_(tq).triu_(1), None, None


def directed_marginals(
    a: Tensor, removed: Removed, shift: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Edge marginals of arborescences from log-potentials ``a`` ``[..., m, n]``.

    Args:
        a: ``[..., m, n]`` float32/float64 log-potentials of edges ``i → j`` (``-inf``:
            absent); rows ``i >= n`` are virtual roots (their column sums enter
            the diagonal).
        removed: the vertex (an int, the same for the whole batch) or the
            ``[..., n]`` bool vertices whose row and column of the Laplacian are
            deleted (the root; vertices outside the graph).
        shift: optional finite shift broadcasting to ``[..., 1, n]`` (one per
            column at most), subtracted before ``exp`` so that it cannot
            overflow (scaling a vertex's in-edges alike leaves the marginals
            unchanged); ``None``: ``a`` is already shifted.

    Returns:
        ``(edges [..., n, n], virtual [..., m - n, n])``: the marginals
        ``∂ log det L / ∂ a`` of the rows of the vertices and of the virtual
        roots; differentiable twice.

    Raises:
        ValueError: if a Laplacian is singular (a vertex cannot be reached).
    """
    return _DirectedMarginals.apply(a, removed, shift)


def undirected_marginals(x: Tensor, removed: Removed, shift: Tensor) -> Tensor:
    """Edge marginals ``[..., n, n]`` of spanning trees from the upper triangle of ``x``.

    Args:
        x: ``[..., n, n]`` float32/float64 log-potentials; only the strict upper
            triangle is read (``-inf``: absent) and gets gradients.
        removed: the deleted vertex (an int) or ``[..., n]`` bool mask (vertex 0
            and the vertices outside the graph, whose edges must be ``-inf``).
        shift: ``[..., 1, 1]`` at least the largest finite entry (``exp`` of the
            shifted potentials is at most 1; the marginals do not depend on it).

    Returns:
        ``[..., n, n]`` symmetric marginals with a zero diagonal; differentiable twice.

    Raises:
        ValueError: if a Laplacian is singular (a vertex cannot be reached).
    """
    return _UndirectedMarginals.apply(x, removed, shift)
