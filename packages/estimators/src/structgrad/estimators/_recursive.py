"""Sampling with traces, trace log-probabilities and ``E | T`` for every structure.

The public face of the recursive Gumbel-max trick (Struminsky et al. 2021): a
structure is drawn by running its algorithm on perturbed utilities
``U = θ + G`` (equivalently on exponentials ``E = exp(−U)``, rate ``exp θ``);
its execution trace ``T`` has a tractable probability ``p(T; θ)``, and ``U``
can be re-drawn exactly from its law given ``T``. Each structure converts its
trace into the step form of :mod:`._steps`; see :data:`RECURSIVE_STRUCTURES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._steps import log_uniform_exponential, steps_conditional, steps_log_prob

__all__ = [
    "RECURSIVE_STRUCTURES",
    "CategoricalTrace",
    "RecursiveSample",
    "conditional_utilities",
    "sample_with_trace",
    "trace_log_prob",
    "utility_log_prob",
]


class CategoricalTrace(NamedTuple):
    """Trace of a categorical draw: the argmax.

    Attributes:
        index: ``[*batch]`` int64 chosen category.
    """

    index: Tensor


class RecursiveSample(NamedTuple):
    """A structure drawn by the recursive Gumbel-max trick.

    Attributes:
        sample: ``[*batch, *event]`` 0/1 structure in the scores' dtype.
        trace: the structure's trace (a NamedTuple of int/bool tensors on the
            scores' device; see :func:`sample_with_trace`).
        utilities: ``[*batch, *event]`` perturbed utilities ``U = θ + G`` the
            algorithm ran on (detached), ``U = −log E``.
    """

    sample: Tensor
    trace: Any
    utilities: Tensor


class _Structure(NamedTuple):
    event_dims: int
    # (U detached, options) -> (sample, trace)
    solve: Callable[..., tuple[Tensor, Any]]
    # (trace, event_shape, options) -> (chosen [*, S], candidates [*, S, N])
    steps: Callable[..., tuple[Tensor, Tensor]]
    options: tuple[str, ...]
    required: tuple[str, ...] = ()
    # (event_shape, device, options) -> bool [*event] entries the algorithm reads;
    # None: all of them.
    used: Callable[..., Tensor] | None = None


def _categorical_solve(u: Tensor) -> tuple[Tensor, CategoricalTrace]:
    index = u.argmax(-1)
    return torch.nn.functional.one_hot(index, u.shape[-1]).to(u.dtype), CategoricalTrace(index)


def _categorical_steps(trace: CategoricalTrace, event: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    chosen = trace.index.unsqueeze(-1)
    candidates = torch.ones(
        (*chosen.shape, event[-1]), dtype=torch.bool, device=chosen.device
    )
    return chosen, candidates


def _subset_solve(u: Tensor, k: int) -> tuple[Tensor, Any]:
    return solvers.top_k(u, k, return_trace=True)


def _subset_steps(trace: Any, event: tuple[int, ...], k: int) -> tuple[Tensor, Tensor]:
    order = trace.order  # [*, k]
    n = event[-1]
    steps = torch.arange(order.shape[-1], device=order.device)
    # position[j] = the step at which j was taken (k if never): j is a candidate
    # of step s iff it was not taken before s.
    position = torch.full((*order.shape[:-1], n), order.shape[-1], device=order.device)
    position = position.scatter(-1, order, steps.expand_as(order))
    return order, position.unsqueeze(-2) >= steps.unsqueeze(-1)


_REGISTRY: dict[str, _Structure] = {
    "categorical": _Structure(1, _categorical_solve, _categorical_steps, ()),
    "k_subset": _Structure(1, _subset_solve, _subset_steps, ("k",), required=("k",)),
}

#: Structures with a tractable trace distribution, in the order documented.
RECURSIVE_STRUCTURES: tuple[str, ...] = tuple(_REGISTRY)


def _lookup(structure: str, options: dict[str, Any]) -> _Structure:
    spec = _REGISTRY.get(structure)
    if spec is None:
        raise ValueError(
            f"no recursive Gumbel-max sampler for structure {structure!r}; "
            f"supported: {', '.join(RECURSIVE_STRUCTURES)}"
        )
    unknown = set(options) - set(spec.options)
    if unknown:
        raise ValueError(
            f"{structure} takes options {spec.options or '()'}, got {sorted(unknown)}"
        )
    missing = [name for name in spec.required if name not in options]
    if missing:
        raise ValueError(f"{structure} needs the option {missing[0]!r}")
    return spec


def _check_logits(logits: Any, spec: _Structure, structure: str) -> Tensor:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating torch.Tensor, got {type(logits).__name__}")
    if logits.ndim < spec.event_dims:
        raise ValueError(
            f"{structure} logits need at least {spec.event_dims} dims, got shape "
            f"{tuple(logits.shape)}"
        )
    if torch.isnan(logits).any() or (logits == torch.inf).any():
        raise ValueError(f"{structure} logits contain NaN or +inf")
    return logits


def _flat_steps(
    structure: str, trace: Any, logits: Tensor, options: dict[str, Any]
) -> tuple[Tensor, Tensor, Tensor]:
    spec = _lookup(structure, options)
    logits = _check_logits(logits, spec, structure)
    event = tuple(logits.shape[logits.ndim - spec.event_dims :])
    chosen, candidates = spec.steps(trace, event, **options)
    flat = logits.reshape(*logits.shape[: logits.ndim - spec.event_dims], -1)
    return flat, chosen.to(logits.device), candidates.to(logits.device)


def sample_with_trace(
    structure: str,
    logits: Tensor,
    *,
    generator: torch.Generator | None = None,
    **options: Any,
) -> RecursiveSample:
    """Draw a structure and its trace by the recursive Gumbel-max trick.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        logits: ``[*batch, *event]`` scores θ (``-inf`` masks an entry).
        generator: optional ``torch.Generator`` on the logits' device.
        **options: the structure's options (``k`` for ``k_subset``).

    Returns:
        A :class:`RecursiveSample`; nothing in it carries gradient.

    Raises:
        ValueError: unknown structure or option, NaN or +inf logits.
    """
    spec = _lookup(structure, options)
    logits = _check_logits(logits, spec, structure)
    theta = logits.detach()
    # U = θ + G = θ − log Exp(1): the standard Gumbel-max perturbation.
    u = theta - log_uniform_exponential(theta.shape, theta, generator)
    sample, trace = spec.solve(u, **options)
    return RecursiveSample(sample, trace, u)


def trace_log_prob(structure: str, trace: Any, logits: Tensor, **options: Any) -> Tensor:
    """``log p(T; θ)`` of traces from :func:`sample_with_trace`.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        trace: the trace, batch shape ``[*batch]``.
        logits: ``[*batch, *event]`` scores θ.
        **options: the options the trace was drawn with.

    Returns:
        ``[*batch]`` log-probabilities, differentiable in ``logits``.
    """
    flat, chosen, candidates = _flat_steps(structure, trace, logits, options)
    return steps_log_prob(flat, chosen, candidates)


def conditional_utilities(
    structure: str,
    trace: Any,
    logits: Tensor,
    *,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Tensor:
    """Draw ``U = θ + G`` from its law given the trace ``T`` (reparameterised).

    Running the structure's algorithm on the result reproduces ``T``; averaged
    over ``T ~ p(T; θ)`` the draws follow the unconditional law.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        trace: the trace, batch shape ``[*batch]``.
        logits: ``[*batch, *event]`` scores θ.
        generator: optional ``torch.Generator``.
        **options: the options the trace was drawn with.

    Returns:
        ``[*batch, *event]`` utilities, differentiable in ``logits``.
    """
    flat, chosen, candidates = _flat_steps(structure, trace, logits, options)
    return steps_conditional(flat, chosen, candidates, generator=generator).reshape(logits.shape)


def utility_log_prob(
    structure: str, utilities: Tensor, logits: Tensor, **options: Any
) -> Tensor:
    """Log-density of Gumbel utilities ``U ~ θ + Gumbel(0, 1)`` (E-REINFORCE's score).

    ``log p(U; θ) = Σ_j [(θ_j − U_j) − exp(θ_j − U_j)]`` over the entries the
    structure's algorithm reads (unread entries would only add variance); equal,
    up to a constant, to the exponential density of ``E = exp(−U)``.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        utilities: ``[*batch, *event]`` sampled utilities (treated as constants).
        logits: ``[*batch, *event]`` scores θ.
        **options: the options the sample was drawn with.

    Returns:
        ``[*batch]`` log-densities, differentiable in ``logits``.
    """
    spec = _lookup(structure, options)
    logits = _check_logits(logits, spec, structure)
    z = logits - utilities.detach()
    terms = z - torch.exp(z)
    # Masked entries (θ = U = -inf) carry no information: drop their NaN.
    keep = torch.isfinite(terms)
    if spec.used is not None:
        event = tuple(logits.shape[logits.ndim - spec.event_dims :])
        keep = keep & spec.used(event, logits.device, **options)
    terms = torch.where(keep, terms, 0.0)
    return terms.reshape(*terms.shape[: terms.ndim - spec.event_dims], -1).sum(-1)
