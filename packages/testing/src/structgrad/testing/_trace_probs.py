"""Probabilities of enumerated traces and exact expectations (torch, imported lazily).

See :mod:`structgrad.testing.traces`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._trace_enum import Entry, Trace, enumerate_traces

__all__ = ["exact_distribution", "exact_expectation", "exact_gradient", "trace_log_probs"]


def trace_log_probs(structure: str, logits: Any, traces: list[Trace]) -> Any:
    """``log p(T; θ) = Σ_steps [θ_chosen − logsumexp θ(candidates)]`` for each trace.

    A step whose candidates are all ``-inf`` is taken as deterministic: it picks its
    lowest (row-major) entry, the solvers' tie-break. For arborescences avoid it
    altogether: once such a forced pick closes a cycle, or at a contraction step,
    the solver's choices depend on the noise (its ``-inf`` edges cost nothing after
    a contraction), and the laws differ (by up to 0.6 when a vertex has only
    ``-inf`` in-edges). Use a finite stand-in such as ``-1e300`` there.

    Args:
        structure: the structure name (checked against the logits' rank).
        logits: torch tensor ``[n]`` or ``[n, n]`` (float64 recommended), no NaN or +inf.
        traces: from :func:`enumerate_traces` or :func:`canonical_trace`.

    Returns:
        ``[len(traces)]`` log-probabilities, differentiable in ``logits``.
    """
    import torch

    rank = 1 if structure in ("categorical", "k_subset", "binary_tree") else 2
    if logits.dim() != rank:
        raise ValueError(f"{structure} logits must have rank {rank}, got {tuple(logits.shape)}")
    # (traces of another n scored a law over the wrong entries, or failed in numpy)
    sizes = {t.structure.shape[0] for t in traces} - {logits.shape[-1]}
    if sizes:
        raise ValueError(
            f"traces enumerated for n={min(sizes)} cannot be scored on logits of shape "
            f"{tuple(logits.shape)}"
        )
    # Many traces share steps: each distinct candidate set gets one logsumexp.
    sets: dict[tuple[Entry, ...], int] = {}
    chosen, set_of, owner = [], [], []
    for t, trace in enumerate(traces):
        for e, c in trace.steps:
            chosen.append(e)
            set_of.append(sets.setdefault(c, len(sets)))
            owner.append(t)
    theta = logits.reshape(-1)
    mask = np.zeros((len(sets), theta.numel()), dtype=bool)
    for c, s in sets.items():
        mask[s, np.ravel_multi_index(tuple(zip(*c, strict=True)), logits.shape)] = True
    first = torch.as_tensor(mask.argmax(1), device=theta.device)  # lowest entry of each set
    pick = torch.as_tensor(
        np.ravel_multi_index(tuple(zip(*chosen, strict=True)), logits.shape) if chosen else [],
        dtype=torch.long,
    ).to(theta.device)
    ids = torch.as_tensor(set_of, dtype=torch.long, device=theta.device)
    neg = torch.tensor(-math.inf, dtype=theta.dtype, device=theta.device)
    masked = torch.where(torch.as_tensor(mask, device=theta.device), theta, neg)  # [U, numel]
    dead = (masked == -math.inf).all(-1)  # [U] sets without a finite logit
    # Double where: dead sets get finite inputs so that logsumexp's gradient stays finite.
    lse = torch.logsumexp(torch.where(dead[:, None], torch.zeros_like(masked), masked), -1)
    step = theta[pick] - lse[ids]
    forced = torch.where(pick == first[ids], torch.zeros_like(step), neg)
    step = torch.where(dead[ids], forced, step)
    out = torch.zeros(len(traces), dtype=theta.dtype, device=theta.device)
    return out.index_add(0, torch.as_tensor(owner, dtype=torch.long, device=theta.device), step)


def exact_distribution(
    structure: str, logits: Any, *, k: int | None = None, root: int = 0
) -> tuple[NDArray[np.float64], Any]:
    """The law of the structure ``X``: ``p(x) = Σ_{T: X(T) = x} p(T; θ)``.

    Args:
        structure: the structure name.
        logits: torch tensor ``[n]`` or ``[n, n]``.
        k: subset size (required for ``k_subset``).
        root: root vertex (``arborescence``).

    Returns:
        ``(stack, probs)``: the distinct structures ``[M, *event]`` (numpy, in order of
        first appearance among the traces) and their probabilities ``[M]`` (torch,
        differentiable in ``logits``).
    """
    import torch

    traces = enumerate_traces(structure, logits.shape[-1], k=k, root=root)
    ids: dict[bytes, int] = {}
    which = [ids.setdefault(t.structure.tobytes(), len(ids)) for t in traces]
    stack = np.stack([traces[which.index(m)].structure for m in range(len(ids))])
    p = trace_log_probs(structure, logits, traces).exp()
    index = torch.as_tensor(which, dtype=torch.long, device=p.device)
    return stack, torch.zeros(len(ids), dtype=p.dtype, device=p.device).index_add(0, index, p)


def exact_expectation(
    structure: str, logits: Any, f: Any, *, k: int | None = None, root: int = 0
) -> Any:
    """``E[f(X)] = Σ_x p(x; θ) f(x)`` by enumeration, differentiable in ``logits``.

    Args:
        structure: the structure name.
        logits: torch tensor ``[n]`` or ``[n, n]`` (float64 recommended).
        f: a callable mapping a stack ``[M, *event]`` of structures (torch, logits'
            dtype and device) to ``[M]`` values, or a table ``[M]`` of values aligned
            with the ``stack`` of :func:`exact_distribution`.
        k: subset size (required for ``k_subset``).
        root: root vertex (``arborescence``).

    Returns:
        The scalar expectation (``torch.autograd.grad`` of it is the exact gradient).
    """
    import torch

    stack, probs = exact_distribution(structure, logits, k=k, root=root)
    configs = torch.as_tensor(stack, dtype=probs.dtype, device=probs.device)
    values = f(configs) if callable(f) else torch.as_tensor(f, dtype=probs.dtype)
    if tuple(values.shape) != tuple(probs.shape):  # a [M, 1] or [1] would broadcast
        raise ValueError(
            f"f must give one value per structure, shape {tuple(probs.shape)}, "
            f"got {tuple(values.shape)}"
        )
    return (probs * values.to(probs.device)).sum()


def exact_gradient(
    structure: str, logits: Any, f: Any, *, k: int | None = None, root: int = 0
) -> tuple[Any, Any]:
    """``(E[f(X)], ∇_θ E[f(X)])``, both detached; see :func:`exact_expectation`."""
    import torch

    theta = logits.detach().clone().requires_grad_(True)
    value = exact_expectation(structure, theta, f, k=k, root=root)
    (grad,) = torch.autograd.grad(value, theta)
    return value.detach(), grad
