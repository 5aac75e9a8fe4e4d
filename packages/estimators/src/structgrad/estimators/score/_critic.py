"""RELAX's default critic, and the critic's input gradients, eager or traced.

:class:`UtilityCritic` is the control variate :class:`~._relax.RELAX` builds
when no critic is given; :func:`input_grads` takes a critic's gradients in
its inputs so that they stay differentiable in its parameters (Grathwohl et
al. 2018, "Backpropagation through the Void").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral
from typing import Any

import torch
from torch import Tensor, nn

from structgrad.distributions.checks import check_int

__all__ = ["UtilityCritic", "check_event_shape", "input_grads"]


_CLIP = 1e6


def check_event_shape(event_shape: Any) -> tuple[int, ...]:
    """``event_shape`` as a non-empty tuple of positive ints; ``ValueError`` naming it otherwise."""
    shape = tuple(event_shape) if isinstance(event_shape, tuple | list | torch.Size) else None
    if not shape or any(isinstance(d, bool) or not isinstance(d, Integral) or d < 1 for d in shape):
        raise ValueError(f"event_shape must be a non-empty tuple of positive ints: {event_shape!r}")
    return tuple(int(d) for d in shape)


def input_grads(
    fn: Callable[..., tuple[Tensor, Any]], *thetas: Tensor, create_graph: bool
) -> tuple[tuple[Tensor, ...], Any]:
    """The gradients of ``fn(*θs)[0]`` in each ``θ`` (zeros where unused), and ``fn(*θs)[1]``.

    ``fn`` returns a scalar and an aux value; passing one copy of θ per term
    gives each term's own gradient from one call. With ``create_graph`` the
    gradients keep their graph to the tensors ``fn`` closes over (the critic's
    parameters). Eager: ``torch.autograd.grad`` on leaf copies, which works for
    any critic. While ``torch.compile`` traces: ``torch.func.grad``, which
    dynamo traces into the caller's graph (``torch.autograd.grad`` breaks it);
    ``fn`` must then be functional (see :meth:`RELAX._critic_terms`).
    """
    if torch.compiler.is_compiling():
        argnums = tuple(range(len(thetas)))
        grads, aux = torch.func.grad(fn, argnums=argnums, has_aux=True)(*thetas)
        return tuple(grads), aux
    leaves = [theta.detach().requires_grad_(True) for theta in thetas]
    value, aux = fn(*leaves)
    if not value.requires_grad:
        return tuple(torch.zeros_like(t) for t in thetas), aux
    grads = torch.autograd.grad(value, leaves, create_graph=create_graph, allow_unused=True)
    pairs = zip(grads, thetas, strict=True)
    return tuple(torch.zeros_like(t) if g is None else g for g, t in pairs), aux


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
        self.event_shape = check_event_shape(event_shape)
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
