"""Implicit MLE: perturb-and-MAP forward, finite difference towards a target backward.

Forward: ``z_s = MAP(θ + τ ε_s)``. Backward, for each sample ``s`` with incoming
gradient ``dy_s``: ``g_s = MAP(αθ + τ' ε_s) − MAP(αθ − λ dy_s + τ' ε_s)`` with the
*same* noise ``ε_s`` (the first term is the forward sample itself when α = 1 and
τ' = τ), divided by λ when the target scales. With ``M`` marginal samples each
term is averaged over ``M`` noise draws. The same engine runs AIMLE (adaptive λ,
central differences) and blackbox differentiation (no noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ._layer import SolverLayer, decorator_or_call
from ._noise import NoiseDistribution
from ._targets import AdaptiveTarget, Target
from ._wrap import BoundSolver, Solver, check_count, finite_scale

__all__ = ["IMLE", "imle"]


@dataclass(slots=True)
class _Plan:
    """Everything the autograd function needs besides the scores.

    ``single``: one sample and one marginal draw (``S = M = 1``); the noise,
    the solutions and the incoming gradient then have the scores' shape, with
    no ``[S, M]`` lead (the common case, kept free of reshapes).
    """

    solver: BoundSolver
    event_ndim: int
    noise: NoiseDistribution | None
    temperature: float
    target_temperature: float
    target: Target
    samples: int
    marginal: int
    central: bool
    mean: bool
    generator: torch.Generator | None
    lengths: Tensor | None
    single: bool

    def solve(self, x: Tensor) -> Tensor:
        return self.solver.solve(x, self.event_ndim, self.lengths)


def _perturb(theta: Tensor, tau: float, eps: Tensor) -> Tensor:
    """``θ + τε`` (``θ + ε`` for τ = 1: the same values, one op less)."""
    return theta + eps if tau == 1.0 else theta + tau * eps


class _PerturbAndMAP(torch.autograd.Function):
    """``z = MAP(θ + τε)`` with the IMLE / AIMLE finite-difference backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, theta: Tensor, plan: _Plan) -> Tensor:
        if plan.noise is None:
            eps = None
            # all samples are equal: one solve, [*batch, *event] or [1, 1, *batch, *event]
            x = theta if plan.single else theta[None, None]
        else:
            shape = theta.shape if plan.single else (plan.samples, plan.marginal, *theta.shape)
            eps = plan.noise.sample(
                tuple(shape), dtype=theta.dtype, device=theta.device, generator=plan.generator
            )  # [*batch, *event] or [S, M, *batch, *event]
            x = _perturb(theta, plan.temperature, eps)
        z = plan.solve(x)
        # The target's base αθ + τ'ε is the forward input itself when α = 1 and
        # τ' = τ; otherwise the backward rebuilds it from the noise.
        reuse = eps is not None and _reuses_forward(plan)
        ctx.plan = plan  # type: ignore[attr-defined]
        ctx.eps = None if reuse else eps  # type: ignore[attr-defined]
        ctx.x = x if reuse else None  # type: ignore[attr-defined]
        ctx.save_for_backward(theta, z)
        if plan.single:
            return z.clone() if plan.mean else z
        out = z[:, 0]  # [S or 1, *batch, *event]: the marginal draws stay internal
        if plan.mean:
            return out.mean(0) if out.shape[0] > 1 else out[0].clone()
        if out.shape[0] == plan.samples:
            return out
        return out.expand(plan.samples, *theta.shape).contiguous()

    @staticmethod
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor, None]:
        if torch.is_grad_enabled():  # create_graph=True: no double backward through MAP
            return _once_differentiable_backward(ctx, dy)
        # grad mode is off in a plain backward: no need for once_differentiable's no_grad
        return _backward(ctx, dy)


def _backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor, None]:
    plan: _Plan = ctx.plan  # type: ignore[attr-defined]
    eps: Tensor | None = ctx.eps  # type: ignore[attr-defined]
    x: Tensor | None = ctx.x  # type: ignore[attr-defined]
    theta, z = ctx.saved_tensors  # type: ignore[attr-defined]
    ev, solver, target, single = plan.event_ndim, plan.solver, plan.target, plan.single
    # [S or 1, 1, *batch, *event] (with reduce="mean" all samples share dy),
    # or [*batch, *event] for a single sample.
    dy = solver.fold(dy if single else (dy[None] if plan.mean else dy)[:, None])
    # A target sees [S, M, *batch, *event] gradients and [S, *batch, *event]
    # estimates whatever the layout; ours work on any lead dims.
    lead = single and type(target) not in _LEAD_FREE_TARGETS
    lam = target.lam(theta, dy[None, None] if lead else dy, ev)
    if lead and isinstance(lam, Tensor):
        lam = lam[0, 0]
    reuse = _reuses_forward(plan)
    if x is not None:
        base = x  # αθ + τ'ε = θ + τε, the forward input
    else:
        base = finite_scale(theta, target.alpha)
        if eps is not None:
            base = _perturb(base, plan.target_temperature, eps)  # the forward noise, reused
    step = dy if isinstance(lam, float) and lam == 1.0 else dy * lam
    right = plan.solve(base - step)  # [S, M, *batch, *event] or [*batch, *event]
    if plan.central:
        # central difference: (MAP(x + λdy) − MAP(x − λdy)) / 2
        g = (plan.solve(base + step) - right) * 0.5
    elif reuse:
        g = z - right  # MAP(θ + τε) is the forward sample
    else:
        g = plan.solve(base) - right
    if not single:
        g = g.mean(1) if plan.marginal > 1 else g[:, 0]  # [S, *batch, *event]
    g = solver.mask(g)
    target.update(g[None] if lead else g, ev)
    # λ = 0 gives g = 0 when α = 1 and τ' = τ; never divide by it.
    if target.scale and isinstance(lam, Tensor):
        if not single:
            lam = lam[:, 0]  # [S, *batch, 1...]
        g = torch.where(lam > 0, g / torch.where(lam > 0, lam, 1.0), g)
    elif target.scale and lam != 1.0:
        g = g / lam if lam > 0 else g
    if single:
        return g, None
    grad = g.mean(0) if plan.mean else g.sum(0)
    return grad, None


_once_differentiable_backward = once_differentiable(_backward)

_LEAD_FREE_TARGETS = (Target, AdaptiveTarget)


def _reuses_forward(plan: _Plan) -> bool:
    """The target's first term ``MAP(αθ + τ'ε)`` is the forward sample (α = 1, τ' = τ)."""
    return plan.target.alpha == 1.0 and plan.target_temperature == plan.temperature


class IMLE(SolverLayer):
    """Implicit maximum-likelihood estimation through a MAP solver.

    The output is ``MAP(θ + τε)``; its gradient is the IMLE estimate
    ``(1/λ)·[MAP(θ + τ'ε) − MAP(αθ − λ·dL/dz + τ'ε)]`` with the same noise ε.
    See :mod:`structgrad.estimators._layer` for the output shapes and
    :class:`Target` for the ``1/λ`` scaling (``Target(lam, scale=False)`` is
    torch-imle's unscaled estimate).

    Args:
        solver: structure name (``"k_subset"``, ``"spanning_tree"``, ...) or a
            batched solver ``f(scores [N, *event]) -> solutions [N, *event]``.
        noise: ``"gumbel"`` (default), ``"sog"`` (Sum-of-Gamma with ``k`` the
            number of ones of a solution), ``None`` or a :class:`NoiseDistribution`.
        temperature: noise temperature τ of the forward sample.
        target_temperature: noise temperature τ' in the target (default τ).
        target: a :class:`Target` (default ``Target(lam=1.0)``) or an
            :class:`AdaptiveTarget`.
        samples: number ``S`` of samples (``None``: one, no sample dim).
        marginal_samples: number ``M`` of noise draws averaged in each term of
            the backward difference (the first is the forward sample's).
        reduce: ``"none"`` or ``"mean"`` over the samples.
        **solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    Shape:
        scores ``[*batch, *event]`` → ``[*batch, *event]``, or ``[S, *batch, *event]``
        with ``samples=S`` and ``reduce="none"``.

    References:
        Niepert, Minervini, Franceschi, "Implicit MLE: Backpropagating Through
        Discrete Exponential Family Distributions", NeurIPS 2021,
        https://arxiv.org/abs/2106.01798.
    """

    central = False

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        noise: NoiseDistribution | str | None = "gumbel",
        temperature: float = 1.0,
        target_temperature: float | None = None,
        target: Target | None = None,
        samples: int | None = None,
        marginal_samples: int = 1,
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
        tt = self.temperature if target_temperature is None else float(target_temperature)
        if not tt >= 0:
            raise ValueError(f"target_temperature must be >= 0, got {tt}")
        self.target_temperature = tt
        self.target = Target() if target is None else target
        if not isinstance(self.target, Target):
            raise ValueError(f"target must be a Target or AdaptiveTarget, got {target!r}")
        self.marginal_samples = check_count(marginal_samples, "marginal_samples")
        if self.marginal_samples > 1 and self.noise is None:
            raise ValueError("marginal_samples > 1 needs noise")

    def forward(
        self, scores: Tensor, *, lengths: Any = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Perturbed MAP solutions with the IMLE backward.

        Args:
            scores: ``[*batch, *event]`` scores (costs for a minimisation solver).
            lengths: optional ``[*batch]`` sizes (spanning trees, arborescences).
            generator: source of the noise.

        Returns:
            Solutions, shaped as described in the class docstring.
        """
        theta, ev, lens = self.prepare(scores, lengths)
        noise = None
        if self.noise is not None and (self.temperature > 0 or self.target_temperature > 0):
            noise = self.noise_for(tuple(theta.shape[theta.ndim - ev :]))
        marginal = self.marginal_samples if noise is not None else 1
        plan = _Plan(
            solver=self.solver,
            event_ndim=ev,
            noise=noise,
            temperature=self.temperature if noise is not None else 0.0,
            target_temperature=self.target_temperature if noise is not None else 0.0,
            target=self.target,
            samples=self.n_samples,
            marginal=marginal,
            central=self.central,
            mean=self.reduce == "mean",
            generator=generator,
            lengths=lens,
            single=self.n_samples == 1 and marginal == 1,
        )
        out = _PerturbAndMAP.apply(theta, plan)
        if not plan.single:
            return self.finish(out)
        # [*batch, *event]: the sample dim of samples=1 goes back in front
        return out[None] if self.sample_dim and not plan.mean else out

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, target_temperature={self.target_temperature}, "
            f"marginal_samples={self.marginal_samples}"
        )


def imle(solver: str | Solver | None = None, **options: Any) -> Any:
    """Make an :class:`IMLE` layer, or a decorator that makes one.

    ``imle("k_subset", k=5)``, ``imle(my_solver, target=Target(10.0))`` or::

        @imle(noise="sog", samples=10)
        def layer(scores):  # [N, n] -> [N, n]
            return my_top_k(scores)

    Args:
        solver: structure name, solver callable, or ``None`` for a decorator.
        **options: the :class:`IMLE` options.

    Returns:
        The layer (an ``nn.Module``), or a decorator returning it.
    """
    return decorator_or_call(IMLE, solver, options)
