"""RELAX with the conditional reparameterisation of the recursive Gumbel-max trick.

Grathwohl et al. 2018, "Backpropagation through the Void", with ``z̃ ~ U | T``
drawn by the trace's conditional law (Struminsky et al. 2021, §3):

    g = (f(X) − c(z̃)) ∇ log p(T; θ) + ∇ c(z) − ∇ c(z̃)

where ``z = U`` re-attached to θ (``U = θ + G`` with ``G`` held fixed, so
``∂z/∂θ = 1``) and ``z̃ = U'`` drawn afresh from ``p(U | T; θ)``,
reparameterised. ``E[g] = ∇ E[f(X)]`` for any critic ``c``; the critic is
trained to minimise ``E[|g|²]`` (the estimator's variance, since its mean does
not depend on the critic), with the same ``loss.backward()``.

Gradient scale: as :class:`ScoreFunction`, one estimate per sample; with
``samples=K`` the ``K`` estimates add up (average the returned loss over dim 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from structgrad.distributions.checks import InputTypeError, check_scores

from ..recursive import conditional_utilities, trace_log_prob
from ..recursive._prepare import read_mask, trace_read_mask
from ._critic import UtilityCritic, check_event_shape, input_grads
from ._draw import Draw, ScoreLayer

__all__ = ["RELAX", "UtilityCritic", "relax"]


class _Terms(NamedTuple):
    score_grad: Tensor  # [*rows, *event] ∇ log p(T), no graph
    critic_grad: Tensor  # [*rows, *event] ∇c(z) − ∇c(z̃), graph to the critic
    critic_tilde: Tensor  # [*rows] c(z̃), graph to the critic


class RELAX(ScoreLayer):
    """RELAX through a structure, with a critic trained to minimise the variance.

    ``forward`` draws the structure and evaluates the critic; ``attach`` adds
    the RELAX estimator for the logits and ``∇_φ |g|²`` for the critic's
    parameters ``φ``, both as zero-valued terms. The variance term is built on
    a detached copy of the logits, so it never reaches the network upstream of
    them; the estimator reaches the logits as ``Σ g.detach() · θ``. The
    critic must act row by row (no batch statistics): row ``r``'s gradient is
    read off the gradient of the sum over rows.

    Example::

        layer = RELAX("categorical", event_shape=(10,))
        x = layer(logits)
        layer.attach(f(x)).mean().backward()   # logits and critic both get gradients

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        critic: a module or callable ``c(utilities [*batch, *event]) -> [*batch]``
            (e.g. a relaxation ``f(softmax(U / τ))``); it gets raw utilities,
            ``-inf`` where the logits are. Default: :class:`UtilityCritic`.
        event_shape: the event shape the default critic is built for.
        hidden: the default critic's hidden width.
        samples: ``None`` or ``K`` independent estimates per row.
        baseline: must be ``None``: the critic is RELAX's control variate.
        **structure_options: ``k``, ``root``, ``lengths``, ...

    Raises:
        ValueError: unknown structure, a baseline, or neither ``critic`` nor
            ``event_shape``.
    """

    own_options = ("critic", "event_shape", "hidden", "baseline")

    def __init__(
        self,
        structure: str,
        *,
        critic: nn.Module | Callable[[Tensor], Tensor] | None = None,
        event_shape: tuple[int, ...] | None = None,
        hidden: int = 32,
        samples: int | None = None,
        baseline: str | None = None,
        **structure_options: Any,
    ) -> None:
        super().__init__(structure, samples=samples, structure_options=structure_options)
        if baseline is not None:
            raise ValueError(
                f"RELAX takes no baseline (got {baseline!r}): its critic is the control "
                "variate; for a leave-one-out baseline use t_reinforce_plus"
            )
        if critic is not None and not callable(critic):
            raise InputTypeError(
                f"critic must be a module or callable (utilities -> [*batch]), "
                f"got {type(critic).__name__}"
            )
        if critic is None:
            if event_shape is None:
                raise ValueError(
                    "RELAX's default critic needs event_shape (e.g. (n,) or (n, n)); "
                    "or pass critic="
                )
            event = check_event_shape(event_shape)
            opts = {k: v for k, v in structure_options.items() if k != "lengths"}
            # The structure's own checks: the event shape, then a root or k for it.
            probe = torch.zeros(event)
            s = self.traced
            if len(event) != s.event_dim:  # a longer shape would read as a batch
                raise ValueError(
                    f"event_shape must have {s.event_dim} dim(s) for {structure}, got {event}"
                )
            check_scores(probe, "event_shape", s.event_dim, square=s.square)
            opts = s.check(probe, **opts)
            used = self.traced.trace_used(event, torch.device("cpu"), **opts)
            critic = UtilityCritic(event, hidden, used)
        self.critic = critic

    def at_draw(self, draw: Draw, generator: torch.Generator | None) -> _Terms | None:
        """The conditional utilities and the critic's gradients (none under no_grad)."""
        return self._critic_terms(draw, generator) if torch.is_grad_enabled() else None

    def _critic_terms(self, draw: Draw, generator: torch.Generator | None) -> _Terms:
        # Traced, the critic's input gradients come from torch.func.grad, which
        # only the default critic is known to support (a user's critic may
        # update its buffers in place, e.g. batch norm, or read values): a
        # user's critic runs eagerly, a graph break, as every critic did before.
        # (the class itself: a subclass may add what torch.func.grad refuses)
        if torch.compiler.is_compiling() and type(self.critic) is not UtilityCritic:
            return self._eager_critic_terms(draw, generator)
        return self._terms(draw, generator)

    @torch.compiler.disable
    def _eager_critic_terms(self, draw: Draw, generator: torch.Generator | None) -> _Terms:
        return self._terms(draw, generator)

    def _terms(self, draw: Draw, generator: torch.Generator | None) -> _Terms:
        theta = draw.logits.detach()  # the terms below reach the critic only
        finite = torch.isfinite(theta)
        name, options, rows = self.traced.name, draw.options, draw.rows
        # What the algorithm can read in this call (not the padding beyond per-call
        # lengths): the default critic reads only that; a user's critic gets everything.
        used = read_mask(name, theta, options)

        def critic_sum(theta_z: Tensor, theta_tilde: Tensor) -> tuple[Tensor, Tensor]:
            # z̃ first, then c(z), c(z̃): one order of random draws (a critic may draw).
            z_tilde = conditional_utilities(
                name, draw.trace, theta_tilde, generator=generator, **options
            )
            # z = U re-attached to θ with G fixed; θ0 avoids (-inf) − (-inf) = NaN.
            theta0 = torch.where(finite, theta_z, torch.zeros_like(theta_z))
            z = draw.utilities.to(theta.dtype) + (theta0 - theta0.detach())
            c_z = self._critic(z, rows, used)
            c_tilde = self._critic(z_tilde, rows, used)
            return c_z.sum() + c_tilde.sum(), c_tilde

        def log_p(theta: Tensor) -> tuple[Tensor, Tensor]:
            total = trace_log_prob(name, draw.trace, theta, **options).sum()
            return total, total  # (torch.func.grad's aux must be tensors)

        # Rows are independent, so the gradient of a sum over rows is per row.
        (score_grad,), _ = input_grads(log_p, theta, create_graph=False)
        # create_graph: g must stay differentiable in the critic's parameters;
        # two copies of θ give ∇c(z) and ∇c(z̃) apart.
        (d_z, d_tilde), c_tilde = input_grads(critic_sum, theta, theta, create_graph=True)
        # On an entry no step of the trace compared, z and z̃ have the same law
        # given T and ∂ log p(T) = 0: its term has conditional mean 0, so dropping
        # it keeps g unbiased and gives exact zeros there (padding, self-loops,
        # the root's column, a 0-subset: whose estimate is then exactly 0).
        keep = finite & trace_read_mask(name, draw.trace, theta, options)
        critic_grad = torch.where(keep, d_z - d_tilde, torch.zeros_like(d_z))
        return _Terms(score_grad.detach(), critic_grad, c_tilde)

    def _critic(self, utilities: Tensor, rows: torch.Size, used: Tensor | None) -> Tensor:
        critic = self.critic
        value = critic(utilities, used) if isinstance(critic, UtilityCritic) else critic(utilities)
        if not isinstance(value, Tensor) or value.shape != rows:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"the critic must return one value per row, {tuple(rows)}; got {got}")
        return value

    def check_baseline(self, baseline: Tensor | None) -> None:
        """RELAX takes no baseline tensor: its critic is the control variate."""
        if baseline is not None:
            raise ValueError("'relax' takes no baseline: its critic is the control variate")

    def estimate(self, loss: Tensor, draw: Draw, baseline: Tensor | None) -> Tensor:
        """``loss`` plus the RELAX estimator and the critic's variance gradient.

        Gradients: the RELAX estimate for the logits, ``∇_φ Σ_event g²`` per row
        for the critic's parameters ``φ``, both through zero-valued terms.
        """
        terms = draw.extra
        if terms is None:  # drawn under no_grad: no critic terms
            # Attached under no_grad too (an evaluation): no gradient is asked for.
            wanted = draw.logits.requires_grad or loss.requires_grad
            if wanted and torch.is_grad_enabled():
                raise ValueError(
                    "RELAX: this draw was made under torch.no_grad(), so it has no critic "
                    "terms and gives no gradient: draw with gradients enabled to train"
                )
            return loss
        ev = self.traced.event_dim
        coeff = (loss.detach() - terms.critic_tilde).reshape(*draw.rows, *([1] * ev))
        g = coeff * terms.score_grad + terms.critic_grad
        # Single-sample estimate of the second moment Σ g²: its φ-gradient is the
        # variance's. Written as 2g·(g − g.detach()): the same gradient, value 0
        # even where g² would overflow.
        variance = (2.0 * g.detach() * (g - g.detach())).flatten(len(draw.rows)).sum(-1)
        theta = draw.logits
        theta0 = torch.where(torch.isfinite(theta), theta, torch.zeros_like(theta))
        # Route the (detached) estimate to the real logits: ∂/∂θ Σ g·θ = g,
        # as g·(θ − θ.detach()), exactly 0 in value.
        routed = (g.detach() * (theta0 - theta0.detach())).flatten(len(draw.rows)).sum(-1)
        return loss + (routed + variance)


def relax(structure: str, **options: Any) -> RELAX:
    """RELAX with the conditional reparameterisation; see :class:`RELAX`."""
    layer = RELAX(structure, **options)
    layer.method = "relax"
    return layer
