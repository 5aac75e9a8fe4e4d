"""Straight-through estimators through a MAP solver, plain or perturbed."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._layer import SolverLayer, decorator_or_call
from ._noise import NoiseDistribution
from ._wrap import BoundSolver, Solver

__all__ = ["StraightThrough", "straight_through"]


class StraightThrough(SolverLayer):
    """Straight-through: the MAP solution forward, the identity backward.

    Forward ``z = MAP(θ + τε)`` (``noise=None``: the plain MAP; with noise: the
    perturbed, "perturb-and-MAP" straight-through of torch-adaptive-imle's
    ``ste``); backward ``dL/dθ = dL/dz``, written ``hard - soft.detach() + soft``
    with ``soft = θ``. For a minimisation solver the soft value is ``-c`` (the
    gradient with respect to the costs is ``-dL/dz``); for spanning trees it is
    the symmetric ``triu(θ) + triu(θ)ᵀ``, so an edge gets ``dy_ij + dy_ji``.
    ``-inf`` scores get a zero gradient.

    Args:
        solver: structure name or batched solver callable.
        noise: ``None`` (default), ``"gumbel"``, ``"sog"`` or a :class:`NoiseDistribution`.
        temperature: noise temperature τ.
        samples: number ``S`` of samples (``None``: one, no sample dim).
        reduce: ``"none"`` or ``"mean"`` over the samples.
        **solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    References:
        Bengio, Léonard, Courville, "Estimating or Propagating Gradients Through
        Stochastic Neurons for Conditional Computation", 2013,
        https://arxiv.org/abs/1308.3432.
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        noise: NoiseDistribution | str | None = None,
        temperature: float = 1.0,
        samples: int | None = None,
        reduce: str = "none",
        **solver_options: Any,
    ) -> None:
        super().__init__(
            solver,
            noise=noise,
            temperature=temperature,
            samples=samples,
            reduce=reduce,
            solver_options=solver_options,
        )

    def forward(
        self, scores: Tensor, *, lengths: Any = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """MAP solutions with the identity gradient.

        Args:
            scores: ``[*batch, *event]`` scores (costs for a minimisation solver).
            lengths: optional ``[*batch]`` sizes (spanning trees, arborescences).
            generator: source of the noise.

        Returns:
            ``[*batch, *event]``, or ``[S, *batch, *event]`` with ``samples=S``.
        """
        theta, ev, lens = self.prepare(scores, lengths)
        noise = self.noise_for(tuple(theta.shape[theta.ndim - ev :]))
        with torch.no_grad():
            if noise is None or self.temperature == 0:
                hard = self.solver.solve(theta.detach()[None], ev, lens)  # [1, *batch, *event]
            else:
                eps = noise.sample(
                    (self.n_samples, *theta.shape),
                    dtype=theta.dtype,
                    device=theta.device,
                    generator=generator,
                )
                hard = self.solver.solve(theta.detach() + self.temperature * eps, ev, lens)
            hard = hard.mean(0) if self.reduce == "mean" else hard
        # -inf scores would make soft - soft.detach() NaN; they get no gradient.
        soft = self.solver.lift(torch.where(torch.isfinite(theta), theta, 0.0))
        # hard - soft.detach() + soft, grouped so that the value is exactly hard
        # ((hard - s) + s rounds away the 0/1 values when |s| is large).
        out = hard + (soft - soft.detach())
        if self.reduce == "none":
            out = out.expand(self.n_samples, *theta.shape)
        return self.finish(out)


def straight_through(solver: str | Solver | None = None, **options: Any) -> Any:
    """Make a :class:`StraightThrough` layer, or a decorator that makes one.

    Args:
        solver: structure name, solver callable, or ``None`` for a decorator.
        **options: the :class:`StraightThrough` options.

    Returns:
        The layer (an ``nn.Module``), or a decorator returning it.
    """
    return decorator_or_call(StraightThrough, solver, options)
