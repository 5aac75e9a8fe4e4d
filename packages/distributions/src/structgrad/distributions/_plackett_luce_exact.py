"""Exact rank marginals and entropy of the Plackett-Luce law, by a sum over item subsets.

The items ranked first ``|S|`` are a set ``S`` whatever their order, and the
next one is drawn from the rest with probabilities ``softmax(θ_rest)``. So
``P(S)``, the probability that the first ``|S|`` ranks hold exactly ``S``,
follows from the smaller sets (``2^n`` of them), and

- ``P(rank t holds i) = Σ_{|S| = t, i ∉ S} P(S) p(i | rest of S)``;
- ``H = Σ_S P(S) H(next choice | S)`` (the chain rule of entropy).

Costs ``O(2^n n)`` time and memory per instance, hence :data:`MAX_ITEMS`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._numerics import widened
from ._utils import logsumexp

__all__ = ["MAX_ITEMS", "rank_marginals_and_entropy"]

#: The most items of an exact sum (``2^16 · 16`` terms per instance).
MAX_ITEMS = 16


def _subsets(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``([2^n, n] membership, [2^n] sizes)`` of every subset ``m`` (bit ``i``: item ``i``)."""
    masks = torch.arange(2**n, device=device)
    has = (masks.unsqueeze(-1) >> torch.arange(n, device=device)) & 1 == 1
    return has, has.sum(-1)


def _next_choice(theta: Tensor, has: Tensor) -> Tensor:
    """``[..., 2^n, n]`` ``log p(i | S)`` of the next item ``i`` once ``S`` is ranked.

    ``softmax`` of the rest's logits. Where only ``-inf`` items are left, the
    sampler ranks them by index (as ``PlackettLuce`` documents): the lowest
    comes next with probability 1.
    """
    rest = torch.where(has, -math.inf, theta.unsqueeze(-2))  # [..., 2^n, n]
    log_z = logsumexp(rest, -1).unsqueeze(-1)  # [..., 2^n, 1]
    finite = torch.isfinite(log_z)
    # (a finite stand-in keeps the gradient of the unused branch NaN-free)
    log_p = rest - torch.where(finite, log_z, torch.zeros_like(log_z))
    left = ~has
    lowest = left & (left.cumsum(-1) == 1)  # [2^n, n] the first item not ranked
    forced = torch.where(lowest, 0.0, -math.inf).to(theta.dtype)
    return torch.where(finite, log_p, forced)


def rank_marginals_and_entropy(theta: Tensor) -> tuple[Tensor, Tensor]:
    """``P(rank t holds item i)`` ``[..., n, n]`` (rows: ranks) and the entropy ``[...]``.

    Computed in float64 and returned in ``theta``'s dtype; differentiable.

    Args:
        theta: ``[..., n]`` logits, ``n <= MAX_ITEMS``.
    """
    n = theta.shape[-1]
    wide = widened(theta)
    has, sizes = _subsets(n, theta.device)
    log_next = _next_choice(wide, has)  # [..., 2^n, n]
    items = torch.arange(n, device=theta.device)
    log_sets = wide.new_full((*wide.shape[:-1], 2**n), -math.inf)
    log_sets[..., 0] = 0.0  # nothing ranked yet
    for size in range(1, n + 1):
        masks = torch.nonzero(sizes == size).squeeze(-1)  # [c]
        before = masks.unsqueeze(-1) ^ (1 << items)  # [c, n] S without item i
        # P(S) = Σ_{i ∈ S} P(S \ {i}) p(i | S \ {i}); -inf where i ∉ S
        step = log_sets[..., before] + log_next[..., before, items]  # [..., c, n]
        step = torch.where(has[masks], step, -math.inf)
        log_sets = log_sets.index_copy(-1, masks, logsumexp(step, -1))
    sets = log_sets.exp()  # [..., 2^n]
    p_next = log_next.exp()
    at_rank = (sizes.unsqueeze(-1) == items).to(wide.dtype)  # [2^n, n]: |S| = t
    marginals = torch.einsum("...s,st,...si->...ti", sets, at_rank, p_next)
    # 0 · log 0 = 0 for items that cannot come next (double where: no 0 · inf in backward)
    possible = p_next > 0
    choice = p_next * torch.where(possible, log_next, torch.zeros_like(log_next))
    entropy = -(sets * choice.sum(-1)).sum(-1)
    return marginals.to(theta.dtype), entropy.to(theta.dtype)
