"""The recursive Gumbel-max trace of a structure, and those of categoricals and k-subsets.

The recursive Gumbel-max trick (Struminsky et al. 2021, "Leveraging Recursive
Gumbel-Max Trick for Approximate Inference in Combinatorial Spaces", NeurIPS)
runs a structure's algorithm on perturbed utilities ``U = θ + G``, equivalently on
exponentials ``E = exp(−U) ~ Exp(rate e^θ)``. Its execution trace is a sequence of
steps, each choosing one entry as the argmin of ``E`` over a set of candidates, so

    log p(T; θ) = Σ_steps [ θ_chosen − logsumexp_candidates θ ].

:class:`Tracing` is the part of :class:`~structgrad.distributions.Structure`
that holds it: :meth:`Tracing.trace_sample` runs the algorithm,
:meth:`Tracing.trace_steps` writes its trace as ``(chosen, candidates)`` and
:meth:`Tracing.trace_used` names the entries it reads. The structures with a
trace override them from the mixins of the ``_trace_*`` modules (and here).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._checks_options import validation_enabled

__all__ = [
    "CategoricalTrace",
    "CategoricalTracing",
    "KSubsetTracing",
    "Tracing",
    "check_trace_lengths",
    "check_trace_size",
]


class CategoricalTrace(NamedTuple):
    """Trace of a categorical draw: the argmax.

    Attributes:
        index: ``[*batch]`` int64 chosen category.
        size: ``[*batch]`` int64 number ``n`` of categories (``None`` when
            unknown), so that a trace is not read against other scores.
    """

    index: Tensor  # type: ignore[assignment]  # shadows tuple.index, as NamedTuples may
    size: Tensor | None = None


def check_trace_size(trace: Any, n: int, name: str) -> None:
    """Raise ``ValueError`` if ``trace`` records an item count other than ``n``.

    A value check: it reads the trace on the host, so it is skipped while
    ``torch.compile`` traces and when validation is off.
    """
    size = getattr(trace, "size", None)
    if size is not None and validation_enabled() and bool((torch.as_tensor(size) != n).any()):
        drawn = sorted({int(v) for v in torch.as_tensor(size).flatten().tolist()})
        raise ValueError(
            f"{name}: the trace was drawn for n = {drawn[0] if len(drawn) == 1 else drawn}, "
            f"the scores have n = {n}"
        )


def check_trace_lengths(drawn: Tensor, lengths: Tensor | None, n: int, name: str) -> None:
    """Raise ``ValueError`` if a trace was drawn with sizes other than ``lengths``.

    A trace records the sizes it was drawn with, so ``lengths`` is not needed
    to score it; given, it must be those sizes (scored against other lengths,
    the log-probability would silently be that of the trace's own sizes). A
    value check, skipped while tracing.

    Args:
        drawn: ``[*batch]`` sizes read off the trace.
        lengths: ``[*batch]`` sizes asked for, or ``None`` (nothing to check).
        n: the event size.
        name: the structure, for the message.
    """
    if lengths is None or not validation_enabled():
        return
    want = lengths.to(drawn)
    # (another batch shape is the caller's error, reported with the batch shapes)
    if want.shape == drawn.shape and bool((drawn != want).any()):
        index = tuple(int(i) for i in torch.nonzero(drawn != want)[0])
        where = index[0] if len(index) == 1 else index  # the batch index, unflattened
        raise ValueError(
            f"{name}: the trace was not drawn with these lengths (instance {where}: drawn "
            f"with {drawn[index].item()} of n = {n} items, scored with lengths "
            f"{want[index].item()})"
        )


class Tracing:
    """The recursive Gumbel-max trace hooks of a structure (defaults: none).

    Every hook takes the options as completed by ``Structure.check``, with
    ``lengths`` (if given) as an int64 tensor on the utilities' device,
    broadcast to the batch.
    """

    name: ClassVar[str]
    #: Why its trace sampler may take a ``-inf`` entry that some structure avoids
    #: (``None``: it never does); samplers refuse ``-inf`` logits then.
    trace_ignores_masks: ClassVar[str | None] = None

    @property
    def has_trace(self) -> bool:
        """Whether the structure has a recursive Gumbel-max trace (:meth:`trace_sample`)."""
        return type(self).trace_sample is not Tracing.trace_sample

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        """Run the structure's algorithm on utilities ``u = θ + G``.

        Args:
            u: ``[*batch, *event]`` utilities (not checked here: see ``Structure.check``).
            **opts: the structure's checked options.

        Returns:
            The 0/1 structure in ``u``'s dtype and its trace, a NamedTuple of
            tensors on ``u``'s device.

        Raises:
            NotImplementedError: for a structure without a trace.
        """
        raise NotImplementedError(f"{self.name}: no recursive Gumbel-max trace")

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        """A trace in step form: ``(chosen [*, S], candidates [*, S, N])``.

        Step ``s`` chooses the entry ``chosen[s]`` of the flattened event (``-1``
        on padded steps) as the argmin of ``E`` over ``candidates[s]`` (bool).

        Args:
            trace: a trace of :meth:`trace_sample`, its fields torch tensors on ``device``.
            event_shape: the event shape of the scores.
            device: the device of the result.
            **opts: the options the trace was drawn with.
        """
        raise NotImplementedError(f"{self.name}: no recursive Gumbel-max trace")

    def trace_used(
        self, event_shape: tuple[int, ...], device: torch.device, **opts: Any
    ) -> Tensor | None:
        """The entries the algorithm reads (``None``: all of them).

        Returns:
            bool ``[*event]`` (``[*batch, *event]`` with ``lengths``) or ``None``.
        """
        return None


class CategoricalTracing(Tracing):
    """Categorical: the argmax of ``U``, a single step over every category."""

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        index = u.argmax(-1)
        size = torch.full_like(index, u.shape[-1])
        one_hot = torch.nn.functional.one_hot(index, u.shape[-1]).to(u.dtype)
        return one_hot, CategoricalTrace(index, size)

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        check_trace_size(trace, event_shape[-1], "categorical")
        chosen = torch.as_tensor(trace.index, device=device).unsqueeze(-1)
        candidates = torch.ones((*chosen.shape, event_shape[-1]), dtype=torch.bool, device=device)
        return chosen, candidates


class KSubsetTracing(Tracing):
    """k-subsets: the top-k of ``U`` in selection order (Plackett-Luce's first ``k``)."""

    def trace_sample(self, u: Tensor, **opts: Any) -> tuple[Tensor, Any]:
        return solvers.top_k(u, opts["k"], return_trace=True)

    def trace_used(
        self, event_shape: tuple[int, ...], device: torch.device, **opts: Any
    ) -> Tensor | None:
        if opts.get("k"):
            return None
        return torch.zeros(event_shape, dtype=torch.bool, device=device)  # k = 0 reads nothing

    def trace_steps(
        self, trace: Any, event_shape: tuple[int, ...], *, device: torch.device, **opts: Any
    ) -> tuple[Tensor, Tensor]:
        order = torch.as_tensor(trace.order, device=device)  # [*, k]
        n = event_shape[-1]
        check_trace_size(trace, n, "k_subset")
        steps = torch.arange(order.shape[-1], device=device)
        # position[j] = the step at which j was taken (k if never): j is a candidate
        # of step s iff it was not taken before s.
        position = torch.full((*order.shape[:-1], n), order.shape[-1], device=device)
        position = position.scatter(-1, order, steps.expand_as(order))
        return order, position.unsqueeze(-2) >= steps.unsqueeze(-1)
