"""The :class:`BoundSolver` every solver-wrapping layer holds, and small shared checks.

A :class:`BoundSolver` is the batched solver, the number of event (structure)
dims, the optimisation sense and the few structure facts an estimator needs (the
spanning-tree edge convention, the number of ones of a solution for Sum-of-Gamma
noise). Internally every layer works in maximisation form: a minimisation solver
is called on ``-x``. :func:`structgrad.estimators.bind_solver` builds one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from structgrad.distributions.checks import check_int, validation_enabled
from structgrad.solvers import InvalidScoresError

__all__ = ["BoundSolver", "Solver", "check_count", "event_size", "finite_scale", "sog_k"]

Solver = Callable[..., Any]


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
        reads: for our structures, ``reads(event_shape, device, lengths=...)``:
            the structure's bool mask of the entries its MAP can read (its
            ``trace_used`` with the bound options: inside ``lengths``, no
            self-loop or edge into an arborescence's root), ``None`` when all
            can; ``None`` for a user's solver.
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
    reads: Callable[..., Tensor | None] | None = None
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
                than a tensor of shape ``[N, *event]`` with ``x``'s dtype and device,
                or (value checks on, eager mode) one holding NaN or an infinity.
        """
        lead = x.ndim - event_ndim
        flat = x if lead == 1 else x.reshape(-1, *x.shape[lead:])
        kw: dict[str, Any] = {}
        if lengths is not None:
            kw["lengths"] = lengths.expand(x.shape[:lead]).reshape(-1)
        # A user's solver gets its own copy: one that edits its input in place
        # would change the caller's scores (a leaf parameter without noise) or
        # the forward input the finite difference starts from.
        arg = -flat if self.minimize else (flat if self.trusted else flat.clone())
        out = self.fn(arg, **kw)
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
        for what, bad in _nonfinite(out):
            if bool(bad.any()):
                raise ValueError(
                    f"solver {self.name} returned a solution holding {what}: a solver must "
                    "return finite solutions (e.g. 0/1 indicators)"
                )

    def fold(self, dy: Tensor) -> Tensor:
        """Map ``dL/dz`` to the solver's variables (spanning tree: ``triu(dy + dyᵀ)``)."""
        if not self.upper:
            return dy
        return torch.triu(dy + dy.transpose(-1, -2), diagonal=1)

    def mask(self, g: Tensor) -> Tensor:
        """Keep only the entries the solver reads (spanning tree: strict upper triangle)."""
        return torch.triu(g, diagonal=1) if self.upper else g

    def read_masker(
        self, event_shape: tuple[int, ...], device: torch.device, lengths: Tensor | None
    ) -> Callable[[Tensor], Tensor]:
        """The map that applies :meth:`mask` and zeros every entry the MAP never reads.

        Built once per call (see ``reads``) and applied to each tensor that needs it.

        Args:
            event_shape: the event dims of the tensors it will mask.
            device: their device.
            lengths: the call's ``[*batch]`` sizes, or ``None``.

        Returns:
            ``keep(g)`` for ``[*lead, *batch, *event]`` gradients or scores.
        """
        read = None if self.reads is None else self.reads(event_shape, device, lengths=lengths)
        if read is None:
            return self.mask
        return lambda g: torch.where(read, self.mask(g), 0.0)

    def check_upstream(
        self, dy: Tensor, theta: Tensor, event_ndim: int, lengths: Tensor | None, owner: str
    ) -> None:
        """Refuse a NaN or infinite ``dL/dz`` on an entry the MAP reads (eager, checks on).

        Entries it never reads (padding beyond ``lengths``, self-loops, edges into
        the root, a tree's diagonal, ``-inf`` scores) get no gradient from any
        rule and may hold anything.

        Args:
            dy: the incoming gradient, ``[*lead, *batch, *event]``.
            theta: the layer's ``[*batch, *event]`` scores (maximisation form).
            event_ndim: number of event dims.
            lengths: the call's ``[*batch]`` sizes, or ``None``.
            owner: the layer, for the message.

        Raises:
            InvalidScoresError: (a ``ValueError``) naming the upstream gradient, not
                the scores it would reach.
        """
        kinds = _nonfinite(dy)
        if not kinds:
            return
        event = tuple(theta.shape[theta.ndim - event_ndim :])
        keep = self.read_masker(event, theta.device, lengths)
        forbidden = torch.isneginf(theta)
        for what, bad in kinds:
            # The flags are folded as dL/dz is (a tree's dy_ji counts on edge ij)
            # and masked as the rules mask it: only entries the MAP reads count.
            read = torch.where(forbidden, 0.0, keep(self.fold(bad.to(dy.dtype))))
            if bool(read.any()):
                # InvalidScoresError (a ValueError): a training loop tells a loss that
                # diverged from a bug, as for NaN scores.
                raise InvalidScoresError(
                    f"{owner}: the upstream gradient dL/dz (of the layer's output) contains "
                    f"{what} on an entry the solver reads; the loss produced it, not the scores"
                )

    def mask_unread(self, g: Tensor, event_ndim: int, lengths: Tensor | None) -> Tensor:
        """:meth:`mask`, and zeros on every entry the MAP never reads (:meth:`read_masker`)."""
        return self.read_masker(tuple(g.shape[g.ndim - event_ndim :]), g.device, lengths)(g)

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
    return 1 if value is None else check_int(value, name, 1)


def finite_scale(theta: Tensor, alpha: float) -> Tensor:
    """``αθ`` keeping ``-inf`` (forbidden) entries at ``-inf`` (0·inf would be NaN)."""
    if alpha == 1.0:
        return theta
    return torch.where(torch.isfinite(theta), theta * alpha, theta)


def event_size(shape: tuple[int, ...], event_ndim: int) -> int:
    """Number of entries of one problem."""
    return math.prod(shape[len(shape) - event_ndim :])


def _nonfinite(x: Tensor) -> tuple[tuple[str, Tensor], ...]:
    """``(what, flags)`` for NaN then infinite entries of ``x``, or ``()`` when all is well.

    ``()`` too when value checks are off (see ``validation_enabled``) or ``x`` is
    empty. Eager only: one reduction (a host sync) in the common case, since a
    finite sum means finite entries; a sum that overflows is re-read and passes.
    """
    if not validation_enabled() or not x.numel() or math.isfinite(float(x.sum())):
        return ()
    return (("NaN", torch.isnan(x)), ("an infinite value", torch.isinf(x)))
