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

import math
from collections.abc import Callable
from numbers import Integral
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from structgrad.distributions.checks import check_int, check_scores

from ..recursive import conditional_utilities, trace_log_prob
from ..recursive._prepare import read_mask, trace_read_mask
from ._draw import Draw, ScoreLayer

__all__ = ["RELAX", "UtilityCritic", "relax"]


_CLIP = 1e6


def _event_shape(event_shape: Any) -> tuple[int, ...]:
    """``event_shape`` as a non-empty tuple of positive ints; ``ValueError`` naming it otherwise."""
    shape = tuple(event_shape) if isinstance(event_shape, tuple | list | torch.Size) else None
    if not shape or any(isinstance(d, bool) or not isinstance(d, Integral) or d < 1 for d in shape):
        raise ValueError(f"event_shape must be a non-empty tuple of positive ints: {event_shape!r}")
    return tuple(int(d) for d in shape)


class UtilityCritic(nn.Module):
    """The default RELAX critic: an MLP on the utilities the algorithm reads.

    ``Flatten → Linear(N, hidden) → ReLU → Linear(hidden, 1)`` as in the
    reference's ``RELAXCritic``, but on utilities ``U`` rather than
    exponentials. Entries the algorithm never reads and masked (``-inf``)
    entries are fed as 0, so the input is always finite. :class:`RELAX` also
    passes the call's mask (with its ``lengths``), so padding is never read.

    Args:
        event_shape: the structure's event shape, e.g. ``(n,)`` or ``(n, n)``.
        hidden: hidden width.
        used: optional bool ``[*event]`` mask of the entries the algorithm reads.
    """

    used: Tensor

    def __init__(
        self, event_shape: tuple[int, ...], hidden: int = 32, used: Tensor | None = None
    ) -> None:
        super().__init__()
        self.event_shape = _event_shape(event_shape)
        hidden = check_int(hidden, "hidden", 1)
        self.input = nn.Linear(math.prod(self.event_shape), hidden)
        self.output = nn.Linear(hidden, 1)
        mask = torch.ones(self.event_shape, dtype=torch.bool) if used is None else used.bool()
        self.register_buffer("used", mask.clone(), persistent=False)

    def forward(self, utilities: Tensor, used: Tensor | None = None) -> Tensor:
        """``[*batch, *event]`` utilities → ``[*batch]`` critic values.

        Args:
            utilities: ``[*batch, *event]`` utilities.
            used: optional bool mask broadcastable to the utilities: the entries
                to read in this call (e.g. inside per-call ``lengths``), on top
                of the mask the critic was built with.
        """
        ev = len(self.event_shape)
        if tuple(utilities.shape[utilities.ndim - ev :]) != self.event_shape:
            raise ValueError(
                f"the critic was built for events of shape {self.event_shape}, got utilities "
                f"of shape {tuple(utilities.shape)}"
            )
        keep = torch.isfinite(utilities) & self.used.to(utilities.device)
        if used is not None:
            keep = keep & used
        # where (not multiply): 0 * -inf would be NaN. Utilities beyond ±1e6
        # (logits of 1e30) are clipped there: any critic keeps RELAX unbiased,
        # and a bounded one keeps the estimator and its square finite.
        x = torch.where(keep, utilities, torch.zeros_like(utilities)).clamp(-_CLIP, _CLIP)
        x = x.flatten(x.ndim - ev).to(self.input.weight.dtype)
        value = self.output(torch.relu(self.input(x))).squeeze(-1)
        return value.to(utilities.dtype)


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
        if critic is None:
            if event_shape is None:
                raise ValueError(
                    "RELAX's default critic needs event_shape (e.g. (n,) or (n, n)); "
                    "or pass critic="
                )
            event = _event_shape(event_shape)
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

    # Its own autograd.grad calls (create_graph) cannot be traced into the caller's
    # compiled graph: aot_autograd failed on them ("a leaf Variable that requires
    # grad is being used in an in-place operation"). It runs eagerly: a graph break.
    @torch.compiler.disable
    def _critic_terms(self, draw: Draw, generator: torch.Generator | None) -> _Terms:
        # A detached leaf copy: the create_graph terms below reach the critic only.
        theta = draw.logits.detach().requires_grad_(True)
        finite = torch.isfinite(theta)
        theta0 = torch.where(finite, theta, torch.zeros_like(theta))
        # z = U re-attached to θ with G fixed; θ0 avoids (-inf) − (-inf) = NaN.
        z = draw.utilities.to(theta.dtype) + (theta0 - theta0.detach())
        name, options = self.traced.name, draw.options
        z_tilde = conditional_utilities(name, draw.trace, theta, generator=generator, **options)
        # What the algorithm can read in this call (not the padding beyond per-call
        # lengths): the default critic reads only that; a user's critic gets everything.
        used = read_mask(name, theta, options)
        c_z, c_tilde = self._critic(z, draw.rows, used), self._critic(z_tilde, draw.rows, used)
        log_p = trace_log_prob(name, draw.trace, theta, **options)
        # Rows are independent, so the gradient of a sum over rows is per row.
        (score_grad,) = torch.autograd.grad(log_p.sum(), theta)
        # create_graph: g must stay differentiable in the critic's parameters.
        d_z, d_tilde = self._grad(c_z, theta), self._grad(c_tilde, theta)
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

    @staticmethod
    def _grad(value: Tensor, theta: Tensor) -> Tensor:
        if not value.requires_grad:
            return torch.zeros_like(theta)
        (grad,) = torch.autograd.grad(value.sum(), theta, create_graph=True, allow_unused=True)
        return torch.zeros_like(theta) if grad is None else grad

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
            if draw.logits.requires_grad or loss.requires_grad:
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
