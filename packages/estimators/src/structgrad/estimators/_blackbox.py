"""Blackbox differentiation of combinatorial solvers (Vlastelica et al., 2020)."""

from __future__ import annotations

from typing import Any

from ._imle import IMLE
from ._layer import decorator_or_call
from ._noise import NoiseDistribution
from ._targets import Target
from ._wrap import BoundSolver, Solver

__all__ = ["Blackbox", "blackbox"]


class Blackbox(IMLE):
    """Blackbox differentiation: the gradient of a piecewise-linear interpolation.

    Forward: the exact solution ``y(w)``. Backward, in the paper's minimisation
    form (costs ``w``): ``-(y(w) − y(w'))/λ`` with ``w' = w + λ·dL/dy``. In the
    maximisation form used for every other layer (``θ = −w``) this is
    ``(MAP(θ) − MAP(θ − λ·dL/dz))/λ``: IMLE without noise and with the ``1/λ``
    scaling, which is how it is run here. The optional noise (τ > 0) is the
    small input perturbation of the Warcraft baselines.

    Args:
        solver: structure name or batched solver callable (``minimize=True`` for
            a cost-minimising callable, as in the paper).
        lam: interpolation strength λ > 0.
        noise: ``None`` (default) or a noise for a perturbed variant.
        temperature: noise temperature (used only with noise).
        samples: number ``S`` of samples (meaningful only with noise).
        reduce: ``"none"`` or ``"mean"``.
        **solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    References:
        Vlastelica, Paulus, Musil, Martius, Rolínek, "Differentiation of Blackbox
        Combinatorial Solvers", ICLR 2020, https://arxiv.org/abs/1912.02175.
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        lam: float = 10.0,
        noise: NoiseDistribution | str | None = None,
        temperature: float = 1.0,
        samples: int | None = None,
        reduce: str = "none",
        **solver_options: Any,
    ) -> None:
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        super().__init__(
            solver,
            noise=noise,
            temperature=temperature,
            target=Target(lam, alpha=1.0, scale=True),
            samples=samples,
            reduce=reduce,
            **solver_options,
        )


def blackbox(solver: str | Solver | None = None, **options: Any) -> Any:
    """Make a :class:`Blackbox` layer, or a decorator that makes one.

    Args:
        solver: structure name, solver callable, or ``None`` for a decorator.
        **options: the :class:`Blackbox` options.

    Returns:
        The layer (an ``nn.Module``), or a decorator returning it.
    """
    return decorator_or_call(Blackbox, solver, options)
