"""``bind_solver``: a structure name or a user's callable, bound once for the layers.

A structure name is resolved here, once, by :func:`structgrad.distributions.structure`;
everything a layer needs about it (event dims, the optimisation sense, the
upper-triangle convention, Sum-of-Gamma's ``k``, ``lengths`` support, its
options) comes from that :class:`~structgrad.distributions.Structure`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from torch import Tensor

from structgrad.distributions import STRUCTURES, Structure, structure
from structgrad.distributions.checks import check_flag, check_int

from ._solver import BoundSolver, Solver

__all__ = ["PERTURBATION_STRUCTURES", "bind_solver"]

#: Structures whose MAP is ``argmax_z <z, θ>`` with ``z`` shaped like ``θ``.
PERTURBATION_STRUCTURES: tuple[str, ...] = tuple(
    name for name in STRUCTURES if structure(name).nonlinear is None
)

# What a missing required option is, for the error (keyed by option name).
_NEEDS = {"k": "the subset size k (e.g. k=5)"}


def _structure_map(s: Structure, options: dict[str, Any], scores: Tensor, **kw: Any) -> Tensor:
    """``s``'s MAP with its bound options (and the call's ``lengths``).

    The solvers of :mod:`structgrad.solvers` check scores, ``lengths`` and the
    options against the sizes themselves, with their own errors; a solution
    that takes a ``-inf`` entry (none avoids them) is refused here.
    """
    opts = {**options, **kw}
    return s.refuse_forbidden(scores, s._map(scores, **opts), **opts)


def _costs_map(s: Structure, options: dict[str, Any], costs: Tensor, **kw: Any) -> Tensor:
    """``s``'s MAP of non-negative costs (a minimising structure: grid shortest paths)."""
    # Dijkstra needs non-negative costs; perturbed or target costs are clipped at 0
    # (as Vlastelica et al.'s w' = max(w + λ dy, 0)).
    return s._map(costs.clamp(min=0.0), **{**options, **kw})


def _negated(fn: Solver, costs: Tensor, **kw: Any) -> Tensor:
    return fn(-costs, **kw)


def _resolve(name: str) -> Structure:
    """The :class:`Structure` called ``name``, if perturbation-based estimators apply."""
    try:
        s = structure(name)
    except ValueError:
        raise ValueError(
            f"unknown structure {name!r}: use one of {', '.join(PERTURBATION_STRUCTURES)} "
            "or pass a solver callable"
        ) from None
    if s.nonlinear is not None:
        raise ValueError(s.nonlinear)
    return s


def _options(s: Structure, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against ``s``'s options and completed with its defaults.

    Raises:
        ValueError: for an option ``s`` does not take, a missing required one,
            or a non-integer (negative) ``k`` or ``root``.
    """
    for option in given:
        if option not in s.option_names:
            takers = [
                repr(n) for n in PERTURBATION_STRUCTURES if option in structure(n).option_names
            ]
            raise ValueError(f"option {option} is for {' and '.join(takers)} only, not {s.name!r}")
    missing = [o for o in s.required if o not in given]
    if missing:
        needs = ", ".join(_NEEDS.get(o, f"the option {o}") for o in missing)
        raise ValueError(f"structure {s.name!r} needs {needs}")
    # bind_solver's structure options (k, root) are non-negative integers; the
    # upper bounds depend on the scores, which the solvers check at each call.
    return s.options({o: check_int(v, o, 0) for o, v in given.items()})


def _bind_structure(name: str, given: dict[str, Any]) -> BoundSolver:
    """The :class:`BoundSolver` of the structure ``name`` with the options ``given``."""
    s = _resolve(name)
    options = _options(s, given)
    fn = functools.partial(_costs_map if s.minimize else _structure_map, s, options)
    return BoundSolver(
        fn,
        s.name,
        s.event_dim,
        minimize=s.minimize,
        upper=s.symmetric,
        ones=functools.partial(s.ones, **options),
        lengths="lengths" in s.option_names,
        reads=functools.partial(s.trace_used, **options),
        trusted=True,
    )


def bind_solver(
    solver: str | Solver | BoundSolver,
    *,
    k: int | None = None,
    root: int | None = None,
    minimize: bool | None = None,
    event_dims: int | None = None,
) -> BoundSolver:
    """Bind a structure name or a batched solver callable.

    Args:
        solver: a structure name (see :data:`PERTURBATION_STRUCTURES`), or a
            callable ``solver(scores [N, *event]) -> solutions [N, *event]``
            returning 0/1 solutions in the scores' dtype and device.
        k: subset size for ``"k_subset"`` (required there, rejected elsewhere).
        root: root of ``"arborescence"`` (default 0; rejected elsewhere).
        minimize: the callable minimises ``<z, c>`` (default ``False``);
            ``"grid_path"`` always minimises. For a structure name,
            ``minimize=True`` on a maximising structure means the layer takes
            costs and solves ``MAP(-c)`` (e.g. the ``k`` smallest entries).
        event_dims: number of trailing structure dims of a callable's input
            (default: every dim but the first, as in torch-imle).

    Returns:
        The :class:`BoundSolver`.

    Raises:
        ValueError: for an unknown structure name, one that perturbation-based
            estimators do not apply to (``binary_tree``), or a bad option.
    """
    if isinstance(solver, BoundSolver):
        return solver
    if minimize is not None:
        minimize = check_flag(minimize, "minimize")
    if isinstance(solver, str):
        if event_dims is not None:
            raise ValueError(f"event_dims is fixed by the structure {solver!r}")
        given = {o: v for o, v in (("k", k), ("root", root)) if v is not None}
        bound = _bind_structure(solver, given)
        if bound.minimize and minimize is False:
            raise ValueError(f"{solver!r} is a minimisation problem (costs); minimize=False")
        if minimize and not bound.minimize:
            flipped = functools.partial(_negated, bound.fn)
            bound = dataclasses.replace(bound, fn=flipped, minimize=True)
        return bound
    if not callable(solver):
        raise ValueError(f"solver must be a structure name or a callable, got {solver!r}")
    if k is not None or root is not None:
        raise ValueError("k and root are options of structure names, not of solver callables")
    if event_dims is not None:
        event_dims = check_int(event_dims, "event_dims", 1)
    name = getattr(solver, "__name__", type(solver).__name__)
    return BoundSolver(solver, name, event_dims, minimize=bool(minimize))
