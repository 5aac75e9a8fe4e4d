"""Binary-entropy relaxations solved by a differentiable convex program (cvxpylayers).

``x* = argmax_{x ∈ P} <θ, x> / τ + Σ_i H(x_i) + H(1 - x_i)`` over the polytope
``P`` of a structure, with ``H(p) = -p log p``. Behind the optional extra
``structgrad-relaxations[cvx]``; the import happens on first use.

References:
    Agrawal et al., "Differentiable Convex Optimization Layers", NeurIPS 2019,
    https://arxiv.org/abs/1910.12430.
    Paulus et al., NeurIPS 2020, https://arxiv.org/abs/2006.08063 (§ binary entropy).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["cvx_relaxation"]

_EXTRA = "pip install 'structgrad-relaxations[cvx]'"
_MAX_TREE_VERTICES = 8  # the spanning-tree polytope has one constraint per vertex subset


def _require() -> tuple[Any, Any]:
    """Import cvxpy and cvxpylayers' torch layer, or say which extra installs them."""
    for name in ("cvxpy", "cvxpylayers"):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(
                f"cvx_relaxation needs the optional dependency {name!r}: {_EXTRA}"
            )
    cp = importlib.import_module("cvxpy")
    layers = importlib.import_module("cvxpylayers.torch")
    return cp, layers.CvxpyLayer


def _polytope(cp: Any, structure: str, x: Any, n: int, k: int | None) -> list[Any]:
    if structure == "k_subset":
        if k is None or not 0 < k < n:
            raise ValueError(f"k_subset needs 0 < k < n = {n}, got k = {k!r}")
        return [cp.sum(x) == k, x >= 0, x <= 1]
    if structure == "matching":  # the Birkhoff polytope on the flattened n x n matrix
        m = cp.reshape(x, (n, n), order="C")
        return [x >= 0, cp.sum(m, axis=0) == 1, cp.sum(m, axis=1) == 1]
    if structure == "spanning_tree":  # x over the n(n-1)/2 upper-triangle edges
        if n > _MAX_TREE_VERTICES:
            raise ValueError(f"spanning_tree polytope is exponential; n <= {_MAX_TREE_VERTICES}")
        edges = list(itertools.combinations(range(n), 2))
        cons = [x >= 0, cp.sum(x) == n - 1]
        for size in range(2, n):
            for subset in itertools.combinations(range(n), size):
                inside = [e for e, (i, j) in enumerate(edges) if i in subset and j in subset]
                cons.append(cp.sum(cp.hstack([x[e] for e in inside])) <= size - 1)
        return cons
    raise ValueError(
        f"cvx_relaxation: no polytope for {structure!r}; supported: k_subset, matching, "
        "spanning_tree"
    )


def cvx_relaxation(structure: str, n: int, *, k: int | None = None) -> Callable[..., Tensor]:
    """Build the binary-entropy relaxation layer of ``structure`` on ``n`` items.

    Args:
        structure: ``"k_subset"`` (``[B, n]`` scores, option ``k``), ``"matching"``
            (``[B, n, n]``) or ``"spanning_tree"`` (``[B, n, n]``, upper triangle
            read, ``n <= 8``).
        n: number of items / vertices.
        k: subset size for ``"k_subset"``.

    Returns:
        ``layer(scores, tau=1.0, solver_args=None) -> x`` differentiable in
        ``scores``, returning the solution in the scores' dtype and shape
        (symmetric for trees); ``solver_args`` go to the conic solver (SCS), e.g.
        ``{"eps_abs": 1e-9, "eps_rel": 1e-9}`` for tighter solutions.

    Raises:
        ModuleNotFoundError: if the ``[cvx]`` extra is not installed.
        ValueError: for an unsupported structure or size.
    """
    cp, layer_cls = _require()
    size = {"k_subset": n, "matching": n * n, "spanning_tree": n * (n - 1) // 2}.get(structure)
    theta = cp.Parameter(size or 1)
    x = cp.Variable(size or 1)
    constraints = _polytope(cp, structure, x, n, k)
    objective = cp.Maximize(theta @ x + cp.sum(cp.entr(x)) + cp.sum(cp.entr(1 - x)))
    problem = cp.Problem(objective, constraints)
    layer = layer_cls(problem, parameters=[theta], variables=[x])
    iu = torch.triu_indices(n, n, 1)

    def relax(
        scores: Tensor, tau: float = 1.0, solver_args: dict[str, Any] | None = None
    ) -> Tensor:
        if structure == "spanning_tree":
            flat = scores[..., iu[0], iu[1]]
        else:
            flat = scores.reshape(
                *scores.shape[: scores.dim() - (1 if structure == "k_subset" else 2)], -1
            )
        (sol,) = layer((flat / tau).to(torch.float64), solver_args=solver_args or {})
        sol = sol.to(scores.dtype)
        if structure == "k_subset":
            return sol
        if structure == "matching":
            return sol.reshape(scores.shape)
        out = scores.new_zeros(scores.shape)
        out[..., iu[0], iu[1]] = sol
        return out + out.transpose(-1, -2)

    return relax
