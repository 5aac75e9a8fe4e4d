"""The Fenchel-Young loss of the perturbed optimizer (Berthet et al., 2020, §4).

``loss(θ, y) = F_τ(θ) − <θ, y>`` per problem, ``F_τ(θ) = E[max_z <z, θ + τZ>]``
estimated by the mean over ``S`` draws; its gradient ``E[MAP(θ + τZ)] − y``
needs one solver call per draw. The draws are the perturbed optimizer's (the
same :class:`SolverLayer` configuration).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from structgrad.distributions.checks import check_options

from ._core import Identity, draw_and_solve
from ._layer import SolverLayer
from ._presets import SOLVER_OPTIONS
from ._solver import Solver

__all__ = ["FenchelYoungLoss"]


class FenchelYoungLoss(nn.Module):
    """Fenchel-Young loss of the perturbed optimizer against target solutions.

    The constant ``Ω(y)`` that makes the true loss non-negative is not computable
    in general and is left out, so the value can be negative; the gradient
    ``E[MAP(θ + τZ)] − y`` is that of the full loss. No gradient flows to ``y``.
    With a minimisation solver the scores are costs ``c`` and the loss is that
    of ``θ = −c``.

    Args:
        solver: structure name or batched solver callable.
        **options: the :func:`~structgrad.estimators.perturbed` options: ``tau``
            (noise scale, default 1), ``noise`` (``"normal"``; ``"gumbel"``,
            ``"sog"``), ``samples`` (default 10) and the solver options.

    Shape:
        scores ``[*batch, *event]`` and targets ``[*batch, *event]`` → ``[*batch]``.

    References:
        Berthet et al., "Learning with Differentiable Perturbed Optimizers",
        NeurIPS 2020, https://arxiv.org/abs/2002.08676 (§4, Fenchel-Young losses).
    """

    def __init__(self, solver: str | Solver, **options: Any) -> None:
        super().__init__()
        check_options("FenchelYoungLoss", options, ("noise", "tau", "samples", *SOLVER_OPTIONS))
        opts = {"noise": "normal", "samples": 10, **options}
        solver_options = {k: opts.pop(k) for k in SOLVER_OPTIONS if k in opts}
        # The loss needs the draws only, not the noise's density gradient (the
        # identity rule is never run): any noise, Sum-of-Gamma included.
        self.layer = SolverLayer(
            solver, gradient=Identity(), reduce="mean", solver_options=solver_options, **opts
        )
        if self.layer.noise is None or not self.layer.tau > 0:
            raise ValueError("FenchelYoungLoss needs noise and tau > 0")

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
        layer = self.layer
        theta, ev, lens = layer.prepare(scores, lengths)
        y = torch.as_tensor(target, dtype=theta.dtype, device=theta.device)
        try:
            y = y.expand_as(theta).detach()
        except RuntimeError:
            raise ValueError(
                f"target of shape {tuple(y.shape)} does not broadcast to the scores' shape "
                f"{tuple(theta.shape)}"
            ) from None
        if bool(((y != 0) & torch.isneginf(theta)).any()):
            raise ValueError(
                "target puts weight on a -inf (forbidden) score: its loss would be +inf"
            )
        plan = layer.plan(theta, ev, lens, generator)
        with torch.no_grad():
            _, x, z = draw_and_solve(plan, theta.detach())
            solver = layer.solver
            # F_τ(θ) ≈ mean_s max_z <z, θ + τZ_s> = mean_s <z_s, x_s> (one value per
            # problem), summed in float64: S values near the dtype's largest would overflow.
            f = solver.inner(z.double(), x.double(), ev)
            mean_z = z
            if not plan.single:
                f, mean_z = f.mean((0, 1)), z.mean((0, 1))
            value = f - solver.inner(y.double(), theta.detach().double(), ev)
            # a loss beyond the dtype's range (scores near ±3e38 in float32) is
            # reported as the largest finite value rather than inf
            big = torch.finfo(theta.dtype).max
            value = value.clamp(-big, big).to(theta.dtype)
            diff = solver.mask(mean_z - y)
        # -inf scores get no gradient (and 0 · -inf must not reach the sum);
        # diff · (θ − θ.detach()) is 0 in value even where diff · θ would overflow.
        finite = torch.where(torch.isfinite(theta), theta, 0.0)
        zero = diff * (finite - finite.detach())
        surrogate = zero.sum(dim=tuple(range(finite.ndim - ev, finite.ndim)))
        # value in the forward pass, gradient E[MAP(θ + τZ)] − y in the backward.
        return value + surrogate

    def extra_repr(self) -> str:
        return f"noise={self.layer.noise}, tau={self.layer.tau}, samples={self.layer.n_samples}"
