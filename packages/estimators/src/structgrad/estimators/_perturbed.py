"""Perturbed optimizers and the Fenchel-Young loss (Berthet et al., 2020).

The perturbed optimizer ``y_σ(θ) = E[MAP(θ + σZ)]`` is a smooth function of θ
with Jacobian ``E[MAP(θ + σZ) ∇ν(Z)ᵀ] / σ`` (``ν = -log density`` of Z), both
estimated with the same ``S`` draws. The Fenchel-Young loss
``F_σ(θ) − <θ, y> + Ω(y)`` with ``F_σ(θ) = E[max_z <z, θ + σZ>]`` has gradient
``y_σ(θ) − y`` and needs a single solver call per draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ._layer import SolverLayer, decorator_or_call
from ._noise import NoiseDistribution
from ._wrap import BoundSolver, Solver

__all__ = ["FenchelYoungLoss", "PerturbedOptimizer", "perturbed"]


@dataclass
class _Draw:
    """The solver, the noise and the randomness of one call."""

    solver: BoundSolver
    event_ndim: int
    noise: NoiseDistribution
    sigma: float
    samples: int
    baseline: bool
    generator: torch.Generator | None
    lengths: Tensor | None

    def perturb_and_solve(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        eps = self.noise.sample(
            (self.samples, *theta.shape),
            dtype=theta.dtype,
            device=theta.device,
            generator=self.generator,
        )  # [S, *batch, *event]
        x = theta + self.sigma * eps
        return eps, x, self.solver.solve(x, self.event_ndim, self.lengths)


class _PerturbedMean(torch.autograd.Function):
    """``E[MAP(θ + σZ)]`` with the score-function Jacobian of Berthet et al."""

    @staticmethod
    def forward(ctx: FunctionCtx, theta: Tensor, draw: _Draw) -> Tensor:
        eps, _, z = draw.perturb_and_solve(theta)
        ctx.draw = draw  # type: ignore[attr-defined]
        ctx.save_for_backward(theta, eps, z)
        return z.mean(0)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor, None]:
        draw: _Draw = ctx.draw  # type: ignore[attr-defined]
        theta, eps, z = ctx.saved_tensors  # type: ignore[attr-defined]
        ev = draw.event_ndim
        dims = tuple(range(z.ndim - ev, z.ndim))
        w = (z * dy).sum(dim=dims, keepdim=True)  # [S, *batch, 1...]: <MAP(θ+σZ_s), dy>
        if draw.baseline:
            # Leave-one-out mean of the other draws: independent of Z_s and E[∇ν(Z)] = 0,
            # so subtracting it keeps the estimate unbiased and lowers its variance.
            s = w.shape[0]
            w = w - (w.sum(0, keepdim=True) - w) / (s - 1)
        grad = (w * draw.noise.score(eps)).mean(0) / draw.sigma
        grad = torch.where(torch.isfinite(theta), grad, 0.0)
        return draw.solver.mask(grad), None


class _FenchelYoung(torch.autograd.Function):
    """Fenchel-Young loss up to ``Ω(y)``; gradient ``E[MAP(θ + σZ)] − y``."""

    @staticmethod
    def forward(ctx: FunctionCtx, theta: Tensor, y: Tensor, draw: _Draw) -> Tensor:
        _, x, z = draw.perturb_and_solve(theta)
        ev, solver = draw.event_ndim, draw.solver
        # F_σ(θ) ≈ mean_s max_z <z, θ + σZ_s> = mean_s <z_s, x_s> (one value per problem).
        f = solver.inner(z, x, ev).mean(0)
        ctx.diff = solver.mask(z.mean(0) - y)  # type: ignore[attr-defined]
        return f - solver.inner(y, theta, ev)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dloss: Tensor) -> tuple[Tensor, None, None]:
        diff: Tensor = ctx.diff  # type: ignore[attr-defined]
        ev = diff.ndim - dloss.ndim
        return dloss.reshape(*dloss.shape, *([1] * ev)) * diff, None, None


class _PerturbedBase(SolverLayer):
    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        sigma: float,
        noise: NoiseDistribution | str,
        samples: int,
        baseline: bool,
        solver_options: dict[str, Any],
    ) -> None:
        super().__init__(
            solver,
            noise=noise,
            temperature=sigma,
            samples=samples,
            reduce="mean",
            solver_options=solver_options,
        )
        if not self.temperature > 0 or self.noise is None:
            raise ValueError("perturbed optimizers need noise and sigma > 0")
        if baseline and self.n_samples < 2:
            raise ValueError("baseline=True needs samples >= 2")
        self.baseline = bool(baseline)

    def draw(
        self, scores: Tensor, lengths: Any, gen: torch.Generator | None
    ) -> tuple[Tensor, _Draw]:
        theta, ev, lens = self.prepare(scores, lengths)
        noise = self.noise_for(tuple(theta.shape[theta.ndim - ev :]))
        assert noise is not None
        draw = _Draw(
            self.solver, ev, noise, self.temperature, self.n_samples, self.baseline, gen, lens
        )
        return theta, draw


class PerturbedOptimizer(_PerturbedBase):
    """Perturbed optimizer: the smoothed solution ``E[MAP(θ + σZ)]``, differentiable.

    Args:
        solver: structure name or batched solver callable.
        sigma: noise scale σ > 0.
        noise: ``"normal"`` (default) or ``"gumbel"`` (or those distributions);
            the Jacobian needs the density's gradient, so not Sum-of-Gamma.
        samples: number ``S`` of draws (default 10).
        baseline: subtract a leave-one-out baseline in the backward pass
            (unbiased, lower variance; not in the paper; needs ``S ≥ 2``).
        **solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    Shape:
        scores ``[*batch, *event]`` → ``[*batch, *event]`` (a Monte Carlo mean).

    References:
        Berthet, Blondel, Teboul, Cuturi, Vert, Bach, "Learning with
        Differentiable Perturbed Optimizers", NeurIPS 2020,
        https://arxiv.org/abs/2002.08676.
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        sigma: float = 1.0,
        noise: NoiseDistribution | str = "normal",
        samples: int = 10,
        baseline: bool = False,
        **solver_options: Any,
    ) -> None:
        super().__init__(
            solver,
            sigma=sigma,
            noise=noise,
            samples=samples,
            baseline=baseline,
            solver_options=solver_options,
        )
        assert self.noise is not None
        self.noise.score(torch.zeros(()))  # fail early on noise without a density gradient

    def forward(
        self, scores: Tensor, *, lengths: Any = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """The perturbed solution ``[*batch, *event]`` (see the class docstring)."""
        theta, draw = self.draw(scores, lengths, generator)
        out: Tensor = _PerturbedMean.apply(theta, draw)
        return out


class FenchelYoungLoss(_PerturbedBase):
    """Fenchel-Young loss of the perturbed optimizer against target solutions.

    ``loss(θ, y) = F_σ(θ) − <θ, y>`` per problem, where ``F_σ(θ) = E[max_z <z, θ+σZ>]``
    is estimated by its ``S``-draw Monte Carlo mean. The constant ``Ω(y)`` that
    makes the true loss non-negative is not computable in general and is left
    out, so the value can be negative; the gradient ``E[MAP(θ + σZ)] − y`` is
    that of the full loss. No gradient flows to ``y``. With a minimisation solver
    the scores are costs ``c`` and the loss is that of ``θ = −c``.

    Args:
        solver: structure name or batched solver callable.
        sigma: noise scale σ > 0.
        noise: ``"normal"`` (default), ``"gumbel"``, ``"sog"`` or a distribution.
        samples: number ``S`` of draws (default 10).
        **solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    Shape:
        scores ``[*batch, *event]`` and targets ``[*batch, *event]`` → ``[*batch]``.

    References:
        Berthet et al., "Learning with Differentiable Perturbed Optimizers",
        NeurIPS 2020, https://arxiv.org/abs/2002.08676 (§4, Fenchel-Young losses).
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        sigma: float = 1.0,
        noise: NoiseDistribution | str = "normal",
        samples: int = 10,
        **solver_options: Any,
    ) -> None:
        super().__init__(
            solver,
            sigma=sigma,
            noise=noise,
            samples=samples,
            baseline=False,
            solver_options=solver_options,
        )

    def forward(
        self,
        scores: Tensor,
        target: Tensor,
        *,
        lengths: Any = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The loss per problem, ``[*batch]``.

        Args:
            scores: ``[*batch, *event]`` scores (costs for a minimisation solver).
            target: ``[*batch, *event]`` target solutions (broadcastable).
            lengths: optional ``[*batch]`` sizes (spanning trees, arborescences).
            generator: source of the noise.
        """
        theta, draw = self.draw(scores, lengths, generator)
        y = torch.as_tensor(target, dtype=theta.dtype, device=theta.device)
        try:
            y = y.expand_as(theta)
        except RuntimeError:
            raise ValueError(
                f"target of shape {tuple(y.shape)} does not broadcast to the scores' shape "
                f"{tuple(theta.shape)}"
            ) from None
        out: Tensor = _FenchelYoung.apply(theta, y.detach(), draw)
        return out


def perturbed(solver: str | Solver | None = None, **options: Any) -> Any:
    """Make a :class:`PerturbedOptimizer`, or a decorator that makes one.

    Args:
        solver: structure name, solver callable, or ``None`` for a decorator.
        **options: the :class:`PerturbedOptimizer` options.

    Returns:
        The layer (an ``nn.Module``), or a decorator returning it.
    """
    return decorator_or_call(PerturbedOptimizer, solver, options)
