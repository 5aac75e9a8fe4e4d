"""The one perturb-and-MAP autograd function, and the three backward rules it runs.

Forward, for every perturbation-based estimator: ``z_s = MAP(θ + τ ε_s)``,
``s = 1..S`` (``ε = 0`` without noise). The backward is a rule:

- :class:`FiniteDifference` (IMLE, AIMLE, blackbox): for each sample with
  incoming gradient ``dy_s``, ``MAP(αθ + τ'ε_s) − MAP(αθ − λ dy_s + τ'ε_s)``
  with the *same* noise (the first term is the forward sample when α = 1 and
  τ' = τ), or the central difference, each term averaged over ``M`` marginal
  noise draws, divided by λ when the target scales;
- :class:`Identity` (straight-through): ``dy`` itself (folded onto the entries
  the solver reads, zero on those it never reads);
- :class:`NoiseScore` (perturbed optimizers): the score-function Jacobian
  ``E[<MAP(θ + τZ), dy> ∇ν(Z)] / τ`` of Berthet et al. (2020), with an optional
  leave-one-out baseline over the ``S`` draws.

Layout: with one sample and one marginal draw (``S = M = 1``, the common case)
noise, solutions and incoming gradients have the scores' shape; otherwise they
carry an ``[S, M]`` lead. Everything is in maximisation form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ._noise import NoiseDistribution
from ._solver import BoundSolver, finite_scale
from ._targets import AdaptiveTarget, Target

__all__ = ["FiniteDifference", "GradientRule", "Identity", "NoiseScore", "Plan", "perturb_and_map"]


@dataclass(frozen=True)
class FiniteDifference:
    """IMLE's backward: a finite difference of MAP calls towards a target.

    Attributes:
        target: a :class:`Target` (fixed λ) or :class:`AdaptiveTarget` (AIMLE's λ).
        central: central instead of forward differences.
        tau_target: noise scale τ' of the target's MAP calls (``None``: the forward τ).
        marginal_samples: noise draws ``M`` averaged in each term.
    """

    target: Target
    central: bool = False
    tau_target: float | None = None
    marginal_samples: int = 1

    def __repr__(self) -> str:  # the target is shown as the layer's submodule
        difference = "central" if self.central else "forward"
        return (
            f"FiniteDifference(difference={difference!r}, tau_target={self.tau_target}, "
            f"marginal_samples={self.marginal_samples})"
        )


@dataclass(frozen=True)
class Identity:
    """Straight-through's backward: the incoming gradient, unchanged."""


@dataclass(frozen=True)
class NoiseScore:
    """The perturbed optimizer's Jacobian; ``baseline``: leave-one-out over the draws."""

    baseline: bool = False


GradientRule = FiniteDifference | Identity | NoiseScore


@dataclass(slots=True)
class Plan:
    """Everything the autograd function needs besides the scores.

    ``single``: one sample and one marginal draw; no ``[S, M]`` lead anywhere.
    """

    solver: BoundSolver
    rule: GradientRule
    event_ndim: int
    noise: NoiseDistribution | None
    tau: float
    tau_target: float
    samples: int
    marginal: int
    mean: bool
    generator: torch.Generator | None
    lengths: Tensor | None
    label: str = "the layer"  # for messages, e.g. "imle('k_subset')"

    @property
    def single(self) -> bool:
        return self.samples == 1 and self.marginal == 1

    def solve(self, x: Tensor) -> Tensor:
        return self.solver.solve(x, self.event_ndim, self.lengths)

    def reuses_forward(self) -> bool:
        """The target's first term ``MAP(αθ + τ'ε)`` is the forward sample (α = 1, τ' = τ)."""
        rule = self.rule
        return (
            isinstance(rule, FiniteDifference)
            and rule.target.alpha == 1.0
            and self.tau_target == self.tau
        )


def _perturb(theta: Tensor, tau: float, eps: Tensor) -> Tensor:
    """``θ + τε`` (``θ + ε`` for τ = 1: the same values, one op less)."""
    return theta + eps if tau == 1.0 else theta + tau * eps


def draw_and_solve(plan: Plan, theta: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
    """Noise ``ε``, perturbed scores ``x = θ + τε`` and solutions ``MAP(x)``.

    Returns:
        ``(eps, x, z)``: ``eps`` is ``None`` without noise, when every sample is
        the plain MAP and one solve serves them all (``x`` is then ``θ`` or
        ``θ[None, None]``); otherwise ``[*batch, *event]`` or ``[S, M, *batch, *event]``.
    """
    if plan.noise is None:
        x = theta if plan.single else theta[None, None]
        return None, x, plan.solve(x)
    shape = theta.shape if plan.single else (plan.samples, plan.marginal, *theta.shape)
    eps = plan.noise.sample(
        tuple(shape), dtype=theta.dtype, device=theta.device, generator=plan.generator
    )
    x = _perturb(theta, plan.tau, eps)
    return eps, x, plan.solve(x)


class _PerturbAndMAP(torch.autograd.Function):
    """``z = MAP(θ + τε)`` with the plan's backward rule."""

    @staticmethod
    def forward(ctx: FunctionCtx, theta: Tensor, plan: Plan) -> Tensor:
        eps, x, z = draw_and_solve(plan, theta)
        # The finite difference's base αθ + τ'ε is the forward input itself when
        # α = 1 and τ' = τ; otherwise the backward rebuilds it from the noise.
        reuse = eps is not None and plan.reuses_forward()
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
    plan: Plan = ctx.plan  # type: ignore[attr-defined]
    theta, z = ctx.saved_tensors  # type: ignore[attr-defined]
    plan.solver.check_upstream(dy, theta, plan.event_ndim, plan.lengths, plan.label)
    if isinstance(plan.rule, Identity):
        return _identity(plan, theta, dy), None
    if isinstance(plan.rule, NoiseScore):
        return _noise_score(plan, plan.rule, theta, z, ctx.eps, dy), None  # type: ignore[attr-defined]
    eps: Tensor | None = ctx.eps  # type: ignore[attr-defined]
    x: Tensor | None = ctx.x  # type: ignore[attr-defined]
    return _finite_difference(plan, plan.rule, theta, z, eps, x, dy), None


_once_differentiable_backward = once_differentiable(_backward)


def _identity(plan: Plan, theta: Tensor, dy: Tensor) -> Tensor:
    """``dL/dθ = dL/dz`` (summed over samples unless they were averaged)."""
    if not plan.single and not plan.mean:
        dy = dy.sum(0)
    # Spanning trees read the upper triangle: an edge gets dy_ij + dy_ji. Entries
    # the MAP never reads (padding, self-loops, into the root) get nothing.
    g = plan.solver.mask_unread(plan.solver.fold(dy), plan.event_ndim, plan.lengths)
    # -inf scores are forbidden choices: they get no gradient.
    return torch.where(torch.isfinite(theta), g, 0.0)


def _noise_score(
    plan: Plan, rule: NoiseScore, theta: Tensor, z: Tensor, eps: Tensor | None, dy: Tensor
) -> Tensor:
    """Berthet et al.'s Jacobian ``E[<z_s, dy> ∇ν(ε_s)] / τ`` (``reduce="mean"`` only)."""
    assert eps is not None and plan.noise is not None
    dims = tuple(range(z.ndim - plan.event_ndim, z.ndim))
    # <MAP(θ + τε_s), dy> per draw over the chosen entries: 0 · NaN on padding would be NaN
    w = torch.where(z != 0, z * dy, 0.0).sum(dim=dims, keepdim=True)
    score = plan.noise.score(eps)
    if plan.single:
        grad = w * score / plan.tau
    else:
        if rule.baseline:
            # Leave-one-out mean of the other draws: independent of ε_s and E[∇ν] = 0,
            # so subtracting it keeps the estimate unbiased and lowers its variance.
            w = w - (w.sum(0, keepdim=True) - w) / (w.shape[0] - 1)
        grad = (w * score).mean(0)[0] / plan.tau
    grad = torch.where(torch.isfinite(theta), grad, 0.0)
    # The noise score ∇ν(ε) is non-zero on every entry, including those the MAP
    # never reads (padding beyond lengths, self-loops, edges into the root): the
    # output does not depend on them, so their exact Jacobian is 0, as the
    # finite differences give. Their zero-mean noise is dropped.
    return plan.solver.mask_unread(grad, plan.event_ndim, plan.lengths)


def _finite_difference(
    plan: Plan,
    rule: FiniteDifference,
    theta: Tensor,
    z: Tensor,
    eps: Tensor | None,
    x: Tensor | None,
    dy: Tensor,
) -> Tensor:
    ev, solver, target, single = plan.event_ndim, plan.solver, rule.target, plan.single
    # [S or 1, 1, *batch, *event] (with reduce="mean" all samples share dy),
    # or [*batch, *event] for a single sample.
    dy = solver.fold(dy if single else (dy[None] if plan.mean else dy)[:, None])
    # A target sees [S, M, *batch, *event] gradients and [S, *batch, *event]
    # estimates whatever the layout; ours work on any lead dims.
    lead = single and type(target) not in (Target, AdaptiveTarget)
    # λ sees only what the MAP reads: padding, self-loops, edges into the root
    # and a tree's lower triangle would change the step on the rest (AIMLE's
    # norms). The step there is zero too: the MAP ignores it, but a NaN would
    # reach the solver's check. θ's mask only matters to a λ that reads it.
    keep = solver.read_masker(tuple(theta.shape[theta.ndim - ev :]), theta.device, plan.lengths)
    dy, read_theta = keep(dy), theta
    if type(target).lam is not Target.lam:
        # nor are -inf (forbidden) entries ever chosen: dL/dz there must not size λ
        dy = torch.where(torch.isneginf(theta), 0.0, dy)
        read_theta = keep(theta)
    lam: Any = target.lam(read_theta, dy[None, None] if lead else dy, ev)
    if lead and isinstance(lam, Tensor):
        lam = lam[0, 0]
    if x is not None:
        base = x  # αθ + τ'ε = θ + τε, the forward input
    else:
        base = finite_scale(theta, target.alpha)
        if eps is not None:
            base = _perturb(base, plan.tau_target, eps)  # the forward noise, reused
    step = dy if isinstance(lam, float) and lam == 1.0 else dy * lam
    right = plan.solve(_move(base, step, -1))  # [S, M, *batch, *event] or [*batch, *event]
    if rule.central:
        # central difference: (MAP(x + λdy) − MAP(x − λdy)) / 2
        g = (plan.solve(_move(base, step, 1)) - right) * 0.5
    elif plan.reuses_forward():
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
        return g
    return g.mean(0) if plan.mean else g.sum(0)


def _move(base: Tensor, step: Tensor, sign: int) -> Tensor:
    """``base ± step``, overflow capped at the dtype's range (λ·dL/dz may pass it); -inf stays."""
    big = torch.finfo(base.dtype).max
    moved = (base - step if sign < 0 else base + step).clamp(-big, big)
    # forbidden (-inf) entries stay forbidden; -inf + inf would be NaN
    return torch.where(torch.isneginf(base), base, moved)


def perturb_and_map(theta: Tensor, plan: Plan) -> Tensor:
    """``MAP(θ + τε)`` with ``plan.rule`` as its backward (see the module docstring).

    Args:
        theta: ``[*batch, *event]`` scores in maximisation form.
        plan: solver, rule, noise, τ, samples and the call's generator and lengths.

    Returns:
        ``[*batch, *event]`` (one sample, or the mean with ``plan.mean``), or
        ``[S, *batch, *event]``.
    """
    out: Tensor = _PerturbAndMAP.apply(theta, plan)
    return out
