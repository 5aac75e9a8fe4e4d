"""Sampling with traces, trace log-probabilities and ``E | T`` for every structure.

The public face of the recursive Gumbel-max trick (Struminsky et al. 2021): a
structure is drawn by running its algorithm on perturbed utilities
``U = θ + G`` (equivalently on exponentials ``E = exp(−U)``, rate ``exp θ``);
its execution trace ``T`` has a tractable probability ``p(T; θ)``, and ``U``
can be re-drawn exactly from its law given ``T``. Each structure's algorithm and
the step form of its trace (see :mod:`._steps`) are its
:class:`~structgrad.distributions.Structure`'s ``trace_sample`` and
``trace_steps``; see :data:`RECURSIVE_STRUCTURES`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from structgrad.distributions.checks import check_flag, validation_enabled

from ._prepare import _flat_steps, _prepare
from ._steps import log_uniform_exponential, steps_conditional, steps_log_prob

__all__ = [
    "RecursiveSample",
    "conditional_utilities",
    "sample_with_trace",
    "trace_log_prob",
    "utility_log_prob",
]


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


def sample_with_trace(
    structure: str,
    logits: Tensor,
    *,
    generator: torch.Generator | None = None,
    wide: bool = False,
    **options: Any,
) -> RecursiveSample:
    """Draw a structure and its trace by the recursive Gumbel-max trick.

    The structure's algorithm runs on ``U = θ + G`` (Gumbel ``G``), i.e. on the
    exponentials ``E = exp(−U) ~ Exp(rate e^θ)`` (Struminsky et al. 2021,
    "Leveraging Recursive Gumbel-Max Trick for Approximate Inference in
    Combinatorial Spaces", NeurIPS). Structures (event shape, options, sample):

    * ``categorical`` ``[n]``: one-hot argmax; trace :class:`CategoricalTrace`.
    * ``k_subset`` ``[n]``, ``k`` (required, in ``[0, n]``): top-k mask; the trace
      is the selection order (:class:`structgrad.solvers.TopKTrace`).
    * ``spanning_tree`` ``[n, n]`` (strict upper triangle read), ``lengths``:
      symmetric adjacency of Kruskal's tree; trace
      :class:`structgrad.solvers.SpanningTreeTrace`.
    * ``arborescence`` ``[n, n]`` (``[i, j]`` = edge ``i -> j``), ``root=0``,
      ``lengths``: the **minimum** arborescence of ``E`` (Chu-Liu/Edmonds on
      ``−E``, rescaled per instance, see ``structgrad.distributions._trace_arborescence``),
      a different law
      from the perturb-and-MAP maximum arborescence of ``θ + G``; trace
      :class:`structgrad.solvers.ArborescenceTrace`.
    * ``matching`` ``[n, n]``: permutation matrix of the greedy crossing matching;
      trace :class:`structgrad.solvers.CrossingTrace` (ordered: several traces give
      one matching).
    * ``binary_tree`` ``[n]``, ``lengths``: ``[*batch, n, n]`` ``[parent, child]``
      adjacency of the argmax-split tree; trace :class:`structgrad.solvers.BinaryTreeTrace`.

    ``lengths`` (ints broadcastable to ``[*batch]``; at least 2 for graphs, 1 for
    binary trees) restricts each instance to its first ``lengths`` vertices/elements;
    the other entries are never read.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        logits: ``[*batch, *event]`` scores θ (``-inf`` masks an entry).
        generator: optional ``torch.Generator`` on the logits' device.
        wide: return the utilities in float64, as they are drawn (else in the
            logits' dtype): for float32 logits at ``|θ| = 1e7`` the noise in
            ``U`` rounds away, and E-REINFORCE's score ``θ − U`` with it.
        **options: the structure's options, listed above.

    Returns:
        A :class:`RecursiveSample`; nothing in it carries gradient. The sample is in
        the logits' dtype, the trace's tensors on the logits' device.

    Raises:
        ValueError: unknown structure or option, NaN or +inf logits, wrong rank,
            non-square graphs, a root outside the graph or not below every length,
            lengths of the wrong shape or out of range, ``-inf`` logits for a
            structure whose algorithm may take them (matchings; see
            ``Structure.trace_ignores_masks``).
    """
    wide = check_flag(wide, "wide")
    s, logits, _, options = _prepare(structure, logits, options)
    theta = logits.detach()
    masked = s.trace_ignores_masks is not None and validation_enabled()
    if masked and bool(torch.isneginf(theta).any()):  # a value check (off while tracing)
        raise ValueError(
            f"logits: -inf entries are not supported for {s.name}: {s.trace_ignores_masks}"
        )
    # U = θ + G = θ − log Exp(1): the standard Gumbel-max perturbation, run in
    # float64 (in float32 at |θ| = 1e8 the noise would round away, ties to index 0).
    noise = log_uniform_exponential(theta.shape, theta, generator)
    u = theta.to(torch.float64) - noise.to(torch.float64)
    sample, trace = s.trace_sample(u, **options)
    sample = s.refuse_forbidden(theta, sample.to(theta.dtype), **options)
    return RecursiveSample(sample, trace, u if wide else u.to(theta.dtype))


def trace_log_prob(structure: str, trace: Any, logits: Tensor, **options: Any) -> Tensor:
    """``log p(T; θ)`` of traces from :func:`sample_with_trace`.

    ``Σ_steps [θ_chosen − logsumexp_candidates θ]``, batched, no loop. A step
    whose candidates are all masked (``-inf``) is forced, decided by the solver's
    tie-breaking, and scores ``log 1 = 0`` (e.g. the greedy crossing matching can
    be forced onto a masked pair; every binary-tree element is a node). This is
    exact except for instances with no structure at all avoiding their masked
    entries, where a forced contraction step of Chu-Liu/Edmonds is not truly
    deterministic; such instances are outside the model.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        trace: the trace, batch shape ``[*batch]``.
        logits: ``[*batch, *event]`` scores θ.
        **options: the options the trace was drawn with.

    Returns:
        ``[*batch]`` log-probabilities, differentiable in ``logits``.

    Raises:
        ValueError: the logits' checks (as :func:`sample_with_trace`), or a
            trace that does not fit them: another shape, batch, ``k``, root or
            item count, or ``lengths`` other than those it was drawn with (these
            read the trace: value checks, off with ``set_validation(False)``
            and while ``torch.compile`` traces, except shape, batch and ``k``).
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

    Raises:
        ValueError: as :func:`trace_log_prob`.
    """
    flat, chosen, candidates = _flat_steps(structure, trace, logits, options)
    return steps_conditional(flat, chosen, candidates, generator=generator).reshape(logits.shape)


def utility_log_prob(structure: str, utilities: Tensor, logits: Tensor, **options: Any) -> Tensor:
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
    s, logits, event, options = _prepare(structure, logits, options)
    if not isinstance(utilities, Tensor) or utilities.shape != logits.shape:
        got = tuple(utilities.shape) if isinstance(utilities, Tensor) else type(utilities).__name__
        raise ValueError(
            f"utilities must be a tensor shaped like the logits {tuple(logits.shape)}, got {got}"
        )
    utilities = utilities.detach()
    # Masked entries (θ = U = -inf) carry no information, nor do unread ones. They
    # are replaced by z = 0 *before* the exp: a where after it would still send
    # 0 * NaN (or 0 * inf) = NaN back to θ.
    keep = torch.isfinite(logits) & torch.isfinite(utilities)
    used = s.trace_used(event, logits.device, **options)
    if used is not None:
        keep = keep & used
    # (float64 utilities, from sample_with_trace(wide=True), keep θ − U exact)
    z = torch.where(keep, logits - torch.where(keep, utilities, 0.0), 0.0)
    terms = torch.where(keep, z - torch.exp(z), 0.0)
    return terms.flatten(terms.ndim - s.event_dim).sum(-1).to(logits.dtype)
