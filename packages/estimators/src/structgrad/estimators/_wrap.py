"""Binding MAP solvers (ours by structure name, or a user's callable) for the estimators.

A :class:`BoundSolver` is what every solver-wrapping layer holds: the batched
solver, the number of event (structure) dims, the optimisation sense and the
few structure facts an estimator needs (the spanning-tree edge convention, the
number of ones of a solution for Sum-of-Gamma noise). Internally every layer
works in maximisation form: a minimisation solver is called on ``-x``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

import structgrad.solvers as solvers

# The lean top-k entry; an older structgrad-solvers without it gets the public call.
_top_k_rows = getattr(solvers, "top_k_rows", None)

__all__ = ["PERTURBATION_STRUCTURES", "BoundSolver", "bind_solver"]

Solver = Callable[..., Any]

#: Structures whose MAP is ``argmax_z <z, θ>`` with ``z`` shaped like ``θ``.
PERTURBATION_STRUCTURES = (
    "categorical",
    "k_subset",
    "spanning_tree",
    "arborescence",
    "matching",
    "grid_path",
)


def _argmax_one_hot(scores: Tensor) -> Tensor:
    """One-hot argmax over the last dim (ties to the lowest index)."""
    idx = scores.argmax(dim=-1, keepdim=True)
    return torch.zeros_like(scores).scatter_(-1, idx, 1.0)


_ROW_DTYPES = (torch.float32, torch.float64)


def _top_k(scores: Tensor, k: int) -> Tensor:
    """``solvers.top_k(scores, k)``, straight on the numpy view of a CPU ``[N, n]`` tensor.

    The same kernel, value checks and errors as the public call, without its
    conversions: the layers call it two or three times per step.
    """
    if (
        _top_k_rows is not None
        and scores.ndim == 2
        and scores.dtype in _ROW_DTYPES
        and scores.is_cpu
        and 0 <= k <= scores.shape[1]
        and not scores.is_neg()
    ):
        rows = np.ascontiguousarray((scores.detach() if scores.requires_grad else scores).numpy())
        return torch.from_numpy(_top_k_rows(rows, k))
    return solvers.top_k(scores, k)


def _grid_path(costs: Tensor) -> Tensor:
    # Dijkstra needs non-negative costs; perturbed or target costs are clipped at 0
    # (as Vlastelica et al.'s w' = max(w + λ dy, 0)).
    return solvers.grid_shortest_path(costs.clamp(min=0.0))


@dataclass(frozen=True)
class BoundSolver:
    """A batched MAP solver with what the estimators need to know about it.

    Attributes:
        fn: the solver, ``fn(scores [N, *event], **kw) -> solutions [N, *event]``
            in the scores' dtype and device (it maximises unless ``minimize``).
        name: structure name, or the callable's name.
        event_ndim: number of trailing structure dims; ``None`` means every dim
            of the layer's input but the first (the torch-imle convention).
        minimize: ``fn`` minimises ``<z, c>``; layers then take costs ``c`` and
            call ``fn`` on ``-x`` for a maximisation-form ``x``.
        upper: spanning-tree convention: the solver reads the strict upper
            triangle, so gradients live there and ``dL/dz`` is folded onto it.
        ones: number of ones of a solution given the event shape (for
            Sum-of-Gamma noise), ``None`` when unknown.
        lengths: the solver accepts ``lengths=`` (padded batches).
        trusted: ``fn`` is one of our structure solvers, which return a tensor of
            the scores' shape, dtype and device by construction: :meth:`solve`
            skips checking its result (a user's solver is always checked).
    """

    fn: Solver
    name: str
    event_ndim: int | None = None
    minimize: bool = False
    upper: bool = False
    ones: Callable[[tuple[int, ...]], float] | None = None
    lengths: bool = False
    trusted: bool = False

    def event_dims(self, theta: Tensor) -> int:
        """Number of event dims for an input ``theta`` (checked against its rank)."""
        if not theta.is_floating_point():
            raise ValueError(f"scores must be a floating tensor, got dtype {theta.dtype}")
        ev = theta.ndim - 1 if self.event_ndim is None else self.event_ndim
        if ev < 1 or theta.ndim < ev:
            raise ValueError(
                f"{self.name}: scores of shape {tuple(theta.shape)} have no room for "
                f"{max(ev, 1)} event dim(s)"
                + (" plus the leading batch dim" if self.event_ndim is None else "")
            )
        return ev

    def solve(self, x: Tensor, event_ndim: int, lengths: Tensor | None = None) -> Tensor:
        """Solve every problem of ``x`` ``[*lead, *event]`` (maximisation form).

        Args:
            x: scores in maximisation form; leading dims are flattened for the call.
            event_ndim: number of event dims.
            lengths: optional ``[*batch]`` sizes, broadcast to the leading dims.

        Returns:
            Solutions ``[*lead, *event]``.

        Raises:
            ValueError: if a solver that is not ``trusted`` returns something else
                than a tensor of shape ``[N, *event]`` with ``x``'s dtype and device.
        """
        lead = x.ndim - event_ndim
        flat = x if lead == 1 else x.reshape(-1, *x.shape[lead:])
        kw: dict[str, Any] = {}
        if lengths is not None:
            kw["lengths"] = lengths.expand(x.shape[:lead]).reshape(-1)
        out = self.fn(-flat if self.minimize else flat, **kw)
        if not self.trusted:
            self._check(out, flat)
        return out if lead == 1 else out.reshape(x.shape)

    def _check(self, out: Any, flat: Tensor) -> None:
        """Raise a ``ValueError`` unless ``out`` is a solution tensor for ``flat``."""
        if not isinstance(out, Tensor):
            raise ValueError(f"solver {self.name} returned {type(out).__name__}, not a Tensor")
        if out.shape != flat.shape:
            raise ValueError(
                f"solver {self.name} returned shape {tuple(out.shape)} for scores of shape "
                f"{tuple(flat.shape)}: a batched solver must map [N, *event] scores to "
                "[N, *event] solutions"
            )
        if out.dtype != flat.dtype:
            raise ValueError(
                f"solver {self.name} returned dtype {out.dtype} for {flat.dtype} scores: "
                "return solutions in the scores' dtype (e.g. `.to(scores.dtype)`)"
            )
        if out.device != flat.device:
            raise ValueError(
                f"solver {self.name} returned a tensor on {out.device} for scores on "
                f"{flat.device}: return solutions on the scores' device"
            )

    def fold(self, dy: Tensor) -> Tensor:
        """Map ``dL/dz`` to the solver's variables (spanning tree: ``triu(dy + dyᵀ)``)."""
        if not self.upper:
            return dy
        return torch.triu(dy + dy.transpose(-1, -2), diagonal=1)

    def mask(self, g: Tensor) -> Tensor:
        """Keep only the entries the solver reads (spanning tree: strict upper triangle)."""
        return torch.triu(g, diagonal=1) if self.upper else g

    def lift(self, theta: Tensor) -> Tensor:
        """The linear map from scores to the solution space the solver reads.

        Identity, except for spanning trees: ``triu(θ) + triu(θ)ᵀ``, so that the
        identity (straight-through) gradient on an edge is ``dy_ij + dy_ji``.
        """
        if not self.upper:
            return theta
        up = torch.triu(theta, diagonal=1)
        return up + up.transpose(-1, -2)

    def inner(self, z: Tensor, x: Tensor, event_ndim: int) -> Tensor:
        """The objective ``<z, x>`` the solver maximises, summed over the event dims."""
        # only the chosen entries count: 0 · (-inf) would be NaN
        prod = self.mask(torch.where(z != 0, z * x, 0.0))
        return prod.sum(dim=tuple(range(prod.ndim - event_ndim, prod.ndim)))


# Typical number of ones of a solution, from the event shape (Sum-of-Gamma's k).
# Module-level functions, not lambdas, so that bound layers pickle.
def _constant(value: float, event: tuple[int, ...]) -> float:
    return value


def _edges_of_tree(event: tuple[int, ...]) -> float:
    return event[-1] - 1.0


def _vertices(event: tuple[int, ...]) -> float:
    return float(event[-1])


def _grid_cells(event: tuple[int, ...]) -> float:
    # 8-neighbour paths from corner to corner visit at least max(H, W) cells;
    # 1.3·size is the Sum-of-Gamma k used for Warcraft maps by Niepert et al.
    return 1.3 * max(event[-2], event[-1])


def _structure(name: str, k: int | None, root: int) -> BoundSolver:
    if k is not None and name != "k_subset":
        raise ValueError(f"option k is for 'k_subset' only, not {name!r}")
    if name == "categorical":
        return BoundSolver(
            _argmax_one_hot, name, 1, ones=functools.partial(_constant, 1.0), trusted=True
        )
    if name == "k_subset":
        if k is None:
            raise ValueError("structure 'k_subset' needs the subset size k (e.g. k=5)")
        kk = int(k)
        return BoundSolver(
            functools.partial(_top_k, k=kk),
            name,
            1,
            ones=functools.partial(_constant, float(max(kk, 1))),
            trusted=True,
        )
    if name == "spanning_tree":
        return BoundSolver(
            solvers.max_spanning_tree,
            name,
            2,
            upper=True,
            ones=_edges_of_tree,
            lengths=True,
            trusted=True,
        )
    if name == "arborescence":
        fn = functools.partial(solvers.max_arborescence, root=root)
        return BoundSolver(fn, name, 2, ones=_edges_of_tree, lengths=True, trusted=True)
    if name == "matching":
        return BoundSolver(solvers.linear_assignment, name, 2, ones=_vertices, trusted=True)
    if name == "grid_path":
        return BoundSolver(
            _grid_path,
            name,
            2,
            minimize=True,
            ones=_grid_cells,
            trusted=True,
        )
    if name == "binary_tree":
        raise ValueError(
            "binary_tree: its solution (an [n, n] adjacency) does not live in the space of "
            "its [n] scores, so MAP(θ) is not argmax <z, θ> and perturbation-based "
            "estimators do not apply; use a score-function estimator over its trace"
        )
    raise ValueError(
        f"unknown structure {name!r}: use one of {', '.join(PERTURBATION_STRUCTURES)} "
        "or pass a solver callable"
    )


def bind_solver(
    solver: str | Solver | BoundSolver,
    *,
    k: int | None = None,
    root: int = 0,
    minimize: bool | None = None,
    event_dims: int | None = None,
) -> BoundSolver:
    """Bind a structure name or a batched solver callable.

    Args:
        solver: a structure name (see :data:`PERTURBATION_STRUCTURES`), or a
            callable ``solver(scores [N, *event]) -> solutions [N, *event]``
            returning 0/1 solutions in the scores' dtype and device.
        k: subset size for ``"k_subset"``.
        root: root of ``"arborescence"``.
        minimize: the callable minimises ``<z, c>`` (default ``False``);
            ``"grid_path"`` always minimises. For a structure name,
            ``minimize=True`` on a maximising structure means the layer takes
            costs and solves ``MAP(-c)`` (e.g. the ``k`` smallest entries).
        event_dims: number of trailing structure dims of a callable's input
            (default: every dim but the first, as in torch-imle).

    Returns:
        The :class:`BoundSolver`.
    """
    if isinstance(solver, BoundSolver):
        return solver
    if isinstance(solver, str):
        if event_dims is not None:
            raise ValueError(f"event_dims is fixed by the structure {solver!r}")
        bound = _structure(solver, k, root)
        if bound.minimize and minimize is False:
            raise ValueError(f"{solver!r} is a minimisation problem (costs); minimize=False")
        if minimize and not bound.minimize:
            flipped = functools.partial(_negated, bound.fn)
            bound = dataclasses.replace(bound, fn=flipped, minimize=True)
        return bound
    if not callable(solver):
        raise ValueError(f"solver must be a structure name or a callable, got {solver!r}")
    if k is not None or root != 0:
        raise ValueError("k and root are options of structure names, not of solver callables")
    if event_dims is not None and (int(event_dims) != event_dims or event_dims < 1):
        raise ValueError(f"event_dims must be a positive integer, got {event_dims}")
    name = getattr(solver, "__name__", type(solver).__name__)
    return BoundSolver(solver, name, event_dims, minimize=bool(minimize))


def _negated(fn: Solver, costs: Tensor, **kw: Any) -> Tensor:
    return fn(-costs, **kw)


def sog_k(bound: BoundSolver, event_shape: tuple[int, ...]) -> float:
    """The ``k`` of Sum-of-Gamma noise for this solver, or a clear error."""
    if bound.ones is None:
        raise ValueError(
            f"noise 'sog' needs k for solver {bound.name}: pass noise=SumOfGamma(k=...) with "
            "the number of ones of a solution"
        )
    return max(bound.ones(event_shape), 1.0)


def check_count(value: int | None, name: str) -> int:
    """A positive integer option (``None`` counts as 1)."""
    if value is None:
        return 1
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def finite_scale(theta: Tensor, alpha: float) -> Tensor:
    """``αθ`` keeping ``-inf`` (forbidden) entries at ``-inf`` (0·inf would be NaN)."""
    if alpha == 1.0:
        return theta
    return torch.where(torch.isfinite(theta), theta * alpha, theta)


def event_size(shape: tuple[int, ...], event_ndim: int) -> int:
    """Number of entries of one problem."""
    return math.prod(shape[len(shape) - event_ndim :])
