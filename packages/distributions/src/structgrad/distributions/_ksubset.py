"""The exponential family over k-subsets: log-space DP over elementary symmetric polynomials.

``Z = e_k(exp θ_1, ..., exp θ_n)`` obeys ``e_j(θ_1..θ_i) = e_j(θ_1..θ_{i-1}) +
exp(θ_i) e_{j-1}(θ_1..θ_{i-1})``, run here in log space. The exact sampler
decides the items one at a time from the suffix table:
``P(x_i = 1 | r slots left) = exp(θ_i) e_{r-1}(θ_{i+1..n}) / e_r(θ_{i..n})``.

References:
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (App. B: k-subsets).
    Kool, van Hoof and Welling, "Ancestral Gumbel-Top-k Sampling for Sampling
    Without Replacement", JMLR 2020 (the Plackett-Luce set probability).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._numerics import widened, without_offset
from ._utils import logsumexp, rand

__all__ = ["k_subset_sample", "kth_largest", "plackett_luce_set_log_prob"]


def kth_largest(scores: Tensor, k: int) -> Tensor:
    """``[..., 1]`` detached k-th largest score (the largest for ``k = 0``)."""
    return scores.detach().topk(max(k, 1), dim=-1).values[..., -1:]


def _suffix_table(theta: Tensor, k: int) -> Tensor:
    """``[..., n + 1, k + 1]`` with ``[..., i, j] = log e_j(θ_i, ..., θ_{n-1})``."""
    n = theta.shape[-1]
    e = torch.full((*theta.shape[:-1], k + 1), -math.inf, dtype=theta.dtype, device=theta.device)
    e[..., 0] = 0.0  # e_0 of nothing is 1
    rows = [e]
    for i in reversed(range(n)):
        # Taking item i moves one slot: e_j += exp(θ_i) e_{j-1}.
        take = torch.cat([e[..., :1].new_full(e[..., :1].shape, -math.inf), e[..., :-1]], -1)
        e = logsumexp(torch.stack([e, take + theta[..., i, None]]), 0)
        rows.append(e)
    return torch.stack(rows[::-1], -2)


def k_subset_sample(
    scores: Tensor, k: int, sample_shape: torch.Size, *, generator: torch.Generator | None = None
) -> Tensor:
    """Exact samples of ``p(x) ∝ exp(<θ, x>)`` over k-subsets, by sequential conditionals.

    Args:
        scores: ``[..., n]`` log-potentials (at least ``k`` finite per row).
        k: the subset size.
        sample_shape: leading sample dimensions.
        generator: optional ``torch.Generator``.

    Returns:
        ``[*sample_shape, ..., n]`` 0/1 masks with ``k`` ones, in ``scores``' dtype.
    """
    theta = scores.detach()
    if k:  # every subset has k items: centred at the k-th largest score, float32
        # keeps the digits that decide the draw (at an offset of 1e6 they were lost)
        theta = theta - kth_largest(theta, k)
    table = _suffix_table(theta, k)  # [..., n + 1, k + 1]
    shape = (*sample_shape, *theta.shape)
    n = theta.shape[-1]
    left = torch.full(shape[:-1], k, dtype=torch.long, device=theta.device)  # slots left
    out = torch.zeros(shape, dtype=theta.dtype, device=theta.device)
    uniform = rand(shape, dtype=theta.dtype, device=theta.device, generator=generator)
    for i in range(n):
        here = table[..., i, :].expand(*shape[:-1], k + 1)
        after = table[..., i + 1, :].expand(*shape[:-1], k + 1)
        r = left.unsqueeze(-1)
        denom = here.gather(-1, r).squeeze(-1)
        numer = after.gather(-1, (r - 1).clamp(min=0)).squeeze(-1) + theta[..., i]
        # exp(θ_i) e_{r-1}(rest) / e_r(i..): a probability in [0, 1]; 0 when no slot is left.
        prob = torch.where(left > 0, torch.exp(numer - denom), torch.zeros_like(denom))
        take = uniform[..., i] < prob
        out[..., i] = take.to(out.dtype)
        left = left - take.long()
    return out


def plackett_luce_set_log_prob(scores: Tensor, value: Tensor, k: int) -> Tensor:
    """``log P(top-k of θ + G = S)``: the perturb-and-MAP law of k-subsets.

    The set is the first ``k`` items of a Plackett-Luce ranking, so its
    probability sums the ``k!`` orders of ``S``; a DP over the ``2^k`` subsets
    of ``S`` does it: ``f(A) = Σ_{i∈A} f(A∖i) exp(θ_i) / Σ_{j∉A∖i} exp(θ_j)``.

    Args:
        scores: ``[..., n]`` logits θ.
        value: ``[..., n]`` 0/1 masks with ``k`` ones (broadcastable with ``scores``).
        k: the subset size.

    Returns:
        ``[...]`` log-probabilities.
    """
    # In float64: float32 logits at 1e6 lost 2.5 % of the mass (the sums cancel);
    # less the common offset where exact: float64 at 1e16 summed to 1.6.
    theta, value = torch.broadcast_tensors(without_offset(widened(scores), 1), value)
    chosen = value.detach().topk(k, dim=-1).indices.sort(-1).values  # [..., k]
    in_set = theta.gather(-1, chosen)  # [..., k]
    outside = logsumexp(theta.masked_fill(value != 0, -math.inf), -1)  # [...]
    bits = torch.tensor([1 << b for b in range(k)], device=theta.device)
    log_f = [theta.new_zeros(theta.shape[:-1])]
    for mask in range(1, 1 << k):
        terms = []
        for i in range(k):
            if not mask >> i & 1:
                continue
            before = mask & ~(1 << i)
            # Items still available before i is drawn: S∖(A∖i) and the outside.
            free = (bits & before) == 0  # [k]
            avail = logsumexp(
                torch.cat([in_set.masked_fill(~free, -math.inf), outside[..., None]], -1), -1
            )
            terms.append(log_f[before] + in_set[..., i] - avail)
        log_f.append(logsumexp(torch.stack(terms, -1), -1))
    return log_f[-1].to(scores.dtype)
