"""The common base of the solver-wrapping layers and the decorator-or-call helper.

Output shapes (all solver-wrapping layers): with scores ``[*batch, *event]``,

- ``samples=None`` (default): one perturbed solution, ``[*batch, *event]``;
- ``samples=S``: ``S`` solutions stacked in front, ``[S, *batch, *event]``; a
  loss written for ``[*batch, *event]`` broadcasts over the sample dim, so
  targets never need repeating. Gradients of the ``S`` samples add up, as for
  any ``expand`` in autograd: average the loss over dim 0 to get the Monte
  Carlo mean;
- ``reduce="mean"``: the average of the ``S`` solutions, ``[*batch, *event]``
  (an estimate of the marginals); every sample then gets the whole incoming
  gradient and the estimates are averaged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ._bind import bind_solver
from ._noise import NoiseDistribution, SumOfGamma, resolve_noise
from ._wrap import BoundSolver, Solver, check_count, sog_k

__all__ = ["SolverLayer", "decorator_or_call"]

_REDUCTIONS = ("none", "mean")
_SOLVER_OPTIONS = {"k", "root", "minimize", "event_dims"}


class SolverLayer(nn.Module):
    """Base class: a structure or a user solver, noise, samples and output reduction.

    Args:
        solver: structure name or batched solver callable (see
            :func:`structgrad.estimators.bind_solver`).
        noise: ``"gumbel"``, ``"sog"``, ``"normal"``, ``None`` or a
            :class:`NoiseDistribution`.
        temperature: noise scale τ on the scores.
        samples: number ``S`` of perturbed solutions; ``None`` for one without
            a sample dim.
        reduce: ``"none"`` or ``"mean"`` (see the module docstring).
        solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        noise: NoiseDistribution | str | None,
        temperature: float,
        samples: int | None,
        reduce: str,
        solver_options: dict[str, Any],
    ) -> None:
        super().__init__()
        unknown = set(solver_options) - _SOLVER_OPTIONS
        if unknown:
            own = inspect.signature(type(self).__init__).parameters
            takes = sorted(
                {p for p in own if p not in ("self", "solver", "solver_options")} | _SOLVER_OPTIONS
            )
            raise ValueError(
                f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; it takes "
                f"{', '.join(takes)}"
            )
        self.solver = bind_solver(solver, **solver_options)
        self.noise = resolve_noise(noise)
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.temperature = float(temperature)
        self.n_samples = check_count(samples, "samples")
        self.sample_dim = samples is not None
        if reduce not in _REDUCTIONS:
            raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
        self.reduce = reduce

    def noise_for(self, event_shape: tuple[int, ...]) -> NoiseDistribution | None:
        """The noise to draw for problems of this event shape (``None``: no noise)."""
        if self.noise is None:
            return None
        if isinstance(self.noise, SumOfGamma) and self.noise.k is None:
            return self.noise.with_k(sog_k(self.solver, event_shape))
        return self.noise

    def prepare(self, scores: Tensor, lengths: Any) -> tuple[Tensor, int, Tensor | None]:
        """Maximisation-form scores, event dims and validated lengths.

        Args:
            scores: ``[*batch, *event]`` scores (costs if the solver minimises).
            lengths: optional ``[*batch]`` problem sizes.

        Returns:
            ``(theta, event_ndim, lengths)`` with ``theta = -scores`` for a
            minimisation solver (autograd flips the gradient back).
        """
        if not isinstance(scores, Tensor):
            raise ValueError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
        ev = self.solver.event_dims(scores)
        theta = -scores if self.solver.minimize else scores
        if lengths is None:
            return theta, ev, None
        if not self.solver.lengths:
            raise ValueError(f"{self.solver.name} does not take lengths")
        lens = torch.as_tensor(lengths, device=scores.device)
        batch = scores.shape[: scores.ndim - ev]
        try:
            lens = lens.expand(batch)
        except RuntimeError:
            raise ValueError(
                f"lengths of shape {tuple(lens.shape)} do not broadcast to the batch shape "
                f"{tuple(batch)}"
            ) from None
        return theta, ev, lens

    def finish(self, out: Tensor) -> Tensor:
        """Drop the sample dim when ``samples`` was not given."""
        if self.reduce == "none" and not self.sample_dim:
            return out.squeeze(0)
        return out

    def extra_repr(self) -> str:
        samples = self.n_samples if self.sample_dim else None
        return (
            f"solver={self.solver.name}, noise={self.noise}, temperature={self.temperature}, "
            f"samples={samples}, reduce={self.reduce!r}"
        )


L = TypeVar("L", bound=nn.Module)


def decorator_or_call(
    cls: Callable[..., L], solver: str | Solver | None, options: dict[str, Any]
) -> L | Callable[[Solver], L]:
    """``cls(solver, **options)``, or a decorator building it when ``solver`` is None."""
    if solver is not None:
        return cls(solver, **options)

    def decorate(fn: Solver) -> L:
        layer = cls(fn, **options)
        # The layer stands in for the decorated function: keep its name and doc.
        functools.update_wrapper(layer, fn, updated=())
        return layer

    return decorate
