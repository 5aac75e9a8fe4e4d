"""Recursive Gumbel-max structures: the name resolved once, the input checked once.

A structure's name is resolved by :func:`structgrad.distributions.structure`; its
algorithm on the utilities ``U = θ + G``, the step form of its trace (see
:mod:`._steps`), the entries it reads, its options and every input check are the
:class:`~structgrad.distributions.Structure`'s (``trace_sample``,
``trace_steps``, ``trace_used``, ``check``). :mod:`._sample` is the public face.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from structgrad.distributions import STRUCTURES, Structure, structure
from structgrad.distributions.checks import validation_enabled

__all__ = ["RECURSIVE_STRUCTURES", "read_mask", "trace_read_mask", "traced"]

#: Structures with a tractable trace distribution, in the order documented.
RECURSIVE_STRUCTURES: tuple[str, ...] = tuple(n for n in STRUCTURES if structure(n).has_trace)


def traced(name: str) -> Structure:
    """The :class:`~structgrad.distributions.Structure` called ``name``, if it has a trace.

    Raises:
        ValueError: for an unknown name or a structure without a recursive
            Gumbel-max trace, listing the supported ones.
    """
    try:
        s = structure(name)
    except ValueError:
        s = None
    if s is None or not s.has_trace:
        raise ValueError(
            f"no recursive Gumbel-max sampler for structure {name!r}; "
            f"supported: {', '.join(RECURSIVE_STRUCTURES)}"
        )
    return s


def _prepare(
    name: str, logits: Any, options: dict[str, Any]
) -> tuple[Structure, Tensor, tuple[int, ...], dict[str, Any]]:
    """Validate everything; return the structure, logits, event shape and checked options.

    The options are the structure's, completed with its defaults; ``lengths`` (if
    given) becomes an int64 tensor on the logits' device, broadcast to the batch,
    as the trace algorithms take it.
    """
    s = traced(name)
    options = s.check(logits, argname="logits", **options)
    event = tuple(logits.shape[logits.ndim - s.event_dim :])
    if options.get("lengths") is not None:
        # Already checked (with the structure's own lower bound): v < lengths per row.
        inside = s.lengths_mask(logits, options["lengths"])
        assert inside is not None
        options["lengths"] = inside.sum(-1)
    return s, logits, event, options


def _as_torch(trace: Any, device: torch.device) -> Any:
    """A trace NamedTuple with numpy or torch fields as torch tensors on ``device``.

    Traces straight from :mod:`structgrad.solvers` run on numpy scores hold numpy
    arrays; they are accepted as they are.
    """
    if not isinstance(trace, tuple) or not hasattr(trace, "_fields"):
        raise ValueError(
            f"trace must be a trace NamedTuple (e.g. from sample_with_trace), got "
            f"{type(trace).__name__}"
        )
    fields: list[Any] = [
        None if field is None else torch.as_tensor(field, device=device) for field in trace
    ]
    return type(trace)(*fields)


def _flat_steps(
    name: str, trace: Any, logits: Tensor, options: dict[str, Any]
) -> tuple[Tensor, Tensor, Tensor]:
    s, logits, event, options = _prepare(name, logits, options)
    trace = _as_torch(trace, logits.device)
    batch = logits.shape[: logits.ndim - s.event_dim]
    mismatch = (
        f"{s.name}: the trace does not fit logits of shape {tuple(logits.shape)} (was it "
        "drawn for logits of another shape?)"
    )
    try:
        chosen, candidates = s.trace_steps(trace, event, device=logits.device, **options)
    except (RuntimeError, IndexError, AttributeError):  # another shape or trace type
        raise ValueError(f"{mismatch}; or is it the trace of another structure?") from None
    # (the index check reads values: eager only, like every value check)
    out_of_range = validation_enabled() and bool((chosen >= candidates.shape[-1]).any())
    if candidates.shape[-1] != math.prod(event) or out_of_range:
        raise ValueError(mismatch)
    k = options.get("k")
    # A k-subset's trace takes one step per element chosen, so its length is k (a
    # shape: static under torch.compile). Unchecked, a trace of another k is scored.
    if k is not None and chosen.shape[-1] != k:
        raise ValueError(
            f"{s.name}: the trace was not drawn with k = {k} (it chose {chosen.shape[-1]} elements)"
        )
    if chosen.shape[:-1] != batch:
        raise ValueError(
            f"{s.name}: the trace has batch shape {tuple(chosen.shape[:-1])}, the "
            f"logits {tuple(batch)}"
        )
    flat = logits.flatten(len(batch))  # (not reshape(*batch, -1): empty batches)
    # A step whose candidates are all masked (-inf) is decided by the solver's
    # deterministic tie-breaking, not by the noise: mark it padded (log 1 = 0), which
    # also keeps -inf - (-inf) out of the sums (e.g. a binary-tree element with a
    # -inf score alone in its span).
    live = (candidates & (flat > -torch.inf).unsqueeze(-2)).any(-1)
    chosen = torch.where(live, chosen, -1)
    return flat, chosen, candidates


def read_mask(name: str, logits: Tensor, options: dict[str, Any]) -> Tensor | None:
    """The entries the structure's algorithm can read, for these logits and options.

    Args:
        name: one of :data:`RECURSIVE_STRUCTURES`.
        logits: ``[*batch, *event]`` scores (checked).
        options: the structure's options, ``lengths`` included.

    Returns:
        bool ``[*event]`` (``[*batch, *event]`` with ``lengths``: nothing outside
        them), or ``None`` when every entry can be read.
    """
    s, logits, event, options = _prepare(name, logits, options)
    return s.trace_used(event, logits.device, **options)


def trace_read_mask(name: str, trace: Any, logits: Tensor, options: dict[str, Any]) -> Tensor:
    """The entries some step of ``trace`` compared, bool ``[*batch, *event]``.

    An entry outside every candidate set did not influence the trace: ``U`` there
    is independent of ``T`` (the conditional draw leaves it unconditional) and
    ``log p(T)`` does not depend on it. Outside the ``lengths``, self-loops and
    edges into an arborescence's root, or every entry of a 0-subset, are such.
    """
    _, chosen, candidates = _flat_steps(name, trace, logits, options)
    # any over the steps: False for a trace with no steps (a size-0 dim).
    read = (candidates & (chosen >= 0).unsqueeze(-1)).any(-2)
    return read.reshape(logits.shape)
