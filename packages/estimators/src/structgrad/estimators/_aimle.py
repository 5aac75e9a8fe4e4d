"""Adaptive IMLE: IMLE with an adaptive target and forward or central differences."""

from __future__ import annotations

from typing import Any

from ._imle import IMLE
from ._layer import decorator_or_call
from ._noise import NoiseDistribution
from ._targets import AdaptiveTarget, Target
from ._wrap import BoundSolver, Solver

__all__ = ["AIMLE", "aimle"]

_DIFFERENCES = ("forward", "central")


class AIMLE(IMLE):
    """Adaptive implicit MLE (AIMLE) through a MAP solver.

    The forward pass is IMLE's, ``MAP(θ + τε)``. The backward pass estimates the
    gradient with, for ``difference="forward"``,
    ``(1/λ)·[MAP(αθ + τ'ε) − MAP(αθ − λ·dL/dz + τ'ε)]`` (IMLE's estimate), or for
    ``difference="central"``,
    ``(1/2λ)·[MAP(αθ + λ·dL/dz + τ'ε) − MAP(αθ − λ·dL/dz + τ'ε)]``, the average of
    the forward and backward one-sided differences; both use the forward noise ε.
    λ comes from the target: by default an :class:`AdaptiveTarget`, whose state
    (β, the running non-zero count, the momentum) is a buffer of this module and
    therefore in its ``state_dict()``. With a fixed :class:`Target` and
    ``difference="forward"`` this is exactly :class:`IMLE`.

    Args:
        solver: structure name or batched solver callable.
        difference: ``"forward"`` (default, as in torch-adaptive-imle) or
            ``"central"`` (``symmetric_perturbation=True`` there).
        target: :class:`AdaptiveTarget` (default ``AdaptiveTarget()``) or :class:`Target`.
        noise: as for :class:`IMLE`.
        temperature: noise temperature τ of the forward sample.
        target_temperature: noise temperature τ' of the targets (default τ).
        samples: number ``S`` of samples (``None``: one, no sample dim).
        marginal_samples: noise draws ``M`` averaged in each term of the difference.
        reduce: ``"none"`` or ``"mean"`` over the samples.
        **solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    Shape:
        scores ``[*batch, *event]`` → ``[*batch, *event]``, or ``[S, *batch, *event]``
        with ``samples=S`` and ``reduce="none"``.

    References:
        Minervini, Franceschi, Niepert, "Adaptive Perturbation-Based Gradient
        Estimation for Discrete Latent Variable Models", AAAI 2023,
        https://arxiv.org/abs/2209.04862.
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        difference: str = "forward",
        target: Target | None = None,
        noise: NoiseDistribution | str | None = "gumbel",
        temperature: float = 1.0,
        target_temperature: float | None = None,
        samples: int | None = None,
        marginal_samples: int = 1,
        reduce: str = "none",
        **solver_options: Any,
    ) -> None:
        super().__init__(
            solver,
            noise=noise,
            temperature=temperature,
            target_temperature=target_temperature,
            target=AdaptiveTarget() if target is None else target,
            samples=samples,
            marginal_samples=marginal_samples,
            reduce=reduce,
            **solver_options,
        )
        if difference not in _DIFFERENCES:
            raise ValueError(f"difference must be one of {_DIFFERENCES}, got {difference!r}")
        self.difference = difference
        self.central = difference == "central"

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, difference={self.difference!r}"


def aimle(solver: str | Solver | None = None, **options: Any) -> Any:
    """Make an :class:`AIMLE` layer, or a decorator that makes one.

    ``aimle("spanning_tree", difference="central")`` or, as in torch-adaptive-imle::

        @aimle(target=AdaptiveTarget(beta=0.0, step=1e-3))
        def layer(scores):  # [N, n] -> [N, n]
            return my_solver(scores)

    Args:
        solver: structure name, solver callable, or ``None`` for a decorator.
        **options: the :class:`AIMLE` options.

    Returns:
        The layer (an ``nn.Module``), or a decorator returning it.
    """
    return decorator_or_call(AIMLE, solver, options)
