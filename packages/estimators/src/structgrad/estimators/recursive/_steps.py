"""The recursive Gumbel-max engine shared by every structure.

A recursive algorithm run on exponentials ``E_j ~ Exp(rate exp(θ_j))`` that, at
each step ``s``, takes the argmin ``c_s`` over a candidate set ``C_s`` has (by the
Exponential-Min facts: the argmin is ``∝ rate``, the minimum is ``Exp(Σ rate)``
and independent of it, the excess of the others is again exponential):

    log p(T) = Σ_s [ θ_{c_s} − logsumexp_{j ∈ C_s} θ_j ]

and ``E | T`` is sampled exactly by drawing every step's minimum
``m_s ~ Exp(Σ_{C_s} exp θ)`` and setting ``E_j = Σ_{s: j ∈ C_s} m_s`` plus a
fresh ``Exp(exp θ_j)`` for every ``j`` never chosen (Struminsky et al. 2021,
"Leveraging Recursive Gumbel-Max Trick for Approximate Inference in
Combinatorial Spaces", §3). Each structure only turns its trace into
``(chosen [*, S], candidates [*, S, N])`` over its ``N`` flattened entries;
padded steps have ``chosen = -1``.

Everything is in the standard Gumbel-max parameterisation: utilities
``U = θ + G = −log E``, so the MAP of ``U`` is the sample.
"""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.distributions import sample_uniform

__all__ = ["log_uniform_exponential", "safe_logsumexp", "steps_conditional", "steps_log_prob"]


def log_uniform_exponential(
    shape: torch.Size | tuple[int, ...],
    like: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """``log Exp(1)`` draws, ``log(−log V)`` with ``V`` uniform in the open interval.

    Args:
        shape: shape of the result.
        like: tensor whose dtype and device the result takes.
        generator: optional ``torch.Generator``.
    """
    # Clamped away from 0 and 1, so both logs stay finite.
    u = sample_uniform(shape, dtype=like.dtype, device=like.device, generator=generator)
    return torch.log(-torch.log(u))


def safe_logsumexp(x: Tensor, dim: int) -> Tensor:
    """``logsumexp`` that returns ``-inf`` with a zero (not NaN) gradient for empty sums.

    Empty sums are all-``-inf`` terms, or no terms at all (a size-0 ``dim``, e.g.
    the steps of a trace with none: a 0-subset).
    """
    if x.shape[dim] == 0:
        # amax has nothing to reduce over a size-0 dim; log 0 = -inf, a constant.
        # (A shape fact, static under torch.compile.)
        return torch.full_like(x.sum(dim=dim), -torch.inf)
    m = x.amax(dim=dim, keepdim=True).detach()
    # A max of -inf would give (-inf) - (-inf) = NaN: shift by 0 instead.
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    s = torch.exp(x - m).sum(dim=dim)
    positive = s > 0
    # log(1) in the empty case keeps the gradient finite; the where discards it.
    out = m.squeeze(dim) + torch.log(torch.where(positive, s, torch.ones_like(s)))
    return torch.where(positive, out, torch.full_like(out, -torch.inf))


def _step_lse(logits: Tensor, chosen: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    valid = chosen >= 0
    masked = logits.unsqueeze(-2).masked_fill(~candidates, -torch.inf)
    return safe_logsumexp(masked, dim=-1), valid


def steps_log_prob(logits: Tensor, chosen: Tensor, candidates: Tensor) -> Tensor:
    """``Σ_s [θ_{c_s} − logsumexp_{C_s} θ]`` over the valid steps.

    Args:
        logits: ``[*, N]`` flattened scores θ.
        chosen: ``[*, S]`` int64 entry chosen at each step, ``-1`` for padding.
        candidates: ``[*, S, N]`` bool candidate sets (ignored on padded steps).

    Returns:
        ``[*]`` log-probabilities of the traces, differentiable in ``logits``.
    """
    lse, valid = _step_lse(logits, chosen, candidates)
    picked = logits.gather(-1, chosen.clamp(min=0))
    # Padded steps contribute log 1 = 0; the where also blocks their gradient.
    terms = torch.where(valid, picked - torch.where(valid, lse, picked.detach()), 0.0)
    return terms.sum(-1)


def steps_conditional(
    logits: Tensor,
    chosen: Tensor,
    candidates: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Utilities ``U = θ + G`` drawn from their law given the trace.

    Reparameterised: differentiable in ``logits``. Entries in no candidate set
    (never read by the algorithm) get unconditional draws.

    Args:
        logits: ``[*, N]`` flattened scores θ.
        chosen: ``[*, S]`` int64 entry chosen at each step, ``-1`` for padding.
        candidates: ``[*, S, N]`` bool candidate sets.
        generator: optional ``torch.Generator``.

    Returns:
        ``[*, N]`` utilities whose recursive argmax reproduces the trace.
    """
    lse, valid = _step_lse(logits, chosen, candidates)
    # Step minimum m_s ~ Exp(rate Σ_{C_s} e^θ) = Exp(1) / e^{lse_s}, kept in log space.
    log_min = log_uniform_exponential(lse.shape, logits, generator) - lse
    in_step = candidates & valid.unsqueeze(-1)
    log_sums = safe_logsumexp(
        torch.where(in_step, log_min.unsqueeze(-1), -torch.inf), dim=-2
    )  # [*, N]: log Σ_{s: j ∈ C_s} m_s
    n = logits.shape[-1]
    one_hot = torch.nn.functional.one_hot(chosen.clamp(min=0), n).bool()
    was_chosen = (one_hot & valid.unsqueeze(-1)).any(-2)
    # A never-chosen entry keeps an independent Exp(e^θ_j) excess (memorylessness).
    # Masked (-inf) scores are swapped for 0 here and given U = -inf at the end,
    # so no inf - inf reaches autograd.
    masked = logits == -torch.inf
    finite_logits = torch.where(masked, torch.zeros_like(logits), logits)
    log_excess = log_uniform_exponential(logits.shape, logits, generator) - finite_logits
    log_excess = torch.where(was_chosen, -torch.inf, log_excess)
    log_e = safe_logsumexp(torch.stack([log_sums, log_excess]), dim=0)
    return torch.where(masked, -torch.inf, -log_e)
