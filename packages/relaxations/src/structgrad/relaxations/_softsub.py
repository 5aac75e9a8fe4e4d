"""The relaxed top-k of Xie and Ermon: k rounds of softmax with soft exclusion.

References:
    Xie and Ermon, "Reparameterizable Subset Sampling via Continuous
    Relaxations", IJCAI 2019, https://arxiv.org/abs/1901.10517.
"""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.distributions import divide_by_tau, sample_gumbel, without_offset
from structgrad.distributions.checks import as_tau, check_flag, check_subset, validation_enabled
from structgrad.solvers import InvalidScoresError

from ._options import checks_options

__all__ = ["relaxed_top_k"]


@checks_options
def relaxed_top_k(
    scores: Tensor,
    k: int,
    tau: float | Tensor,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed k-hot sample: ``a_j = softmax(r_j / tau)`` with ``r_{j+1} = r_j + log(1 - a_j)``.

    With ``noise=True`` the scores are first perturbed with Gumbel noise, which
    makes the hard limit a sample of the Plackett-Luce top-k (Gumbel top-k);
    with ``noise=False`` the relaxation of the deterministic top-k is returned.

    Args:
        scores: ``[..., n]`` scores; ``-inf`` items are never selected.
        k: subset size in ``[0, n]``.
        tau: temperature > 0, a float or one per row (a tensor broadcastable to
            ``scores`` with size 1 in the last dim: the rounds centre each row).
        noise: add Gumbel noise first.
        generator: optional ``torch.Generator``.

    Returns:
        ``[..., n]`` non-negative values summing to ``k``, each at most 1 only in
        the limit (Xie & Ermon's rounds may give an item more than 1 at a
        large ``tau``: ``[2, 0]``, ``k = 2``, ``tau = 1`` gives ``[1.38, 0.62]``);
        the hard top-k mask as ``tau -> 0``.

    Raises:
        ValueError: on NaN or +inf scores, a bad ``k``, or a bad temperature
            (one varying within a row included).
    """
    _, k = check_subset(scores, k)
    noise = check_flag(noise, "noise")
    t = as_tau(tau, scores, event_dims=(-1,))
    if scores.numel() and validation_enabled() and bool(((scores > -torch.inf).sum(-1) < k).any()):
        raise InvalidScoresError(f"scores: some row has fewer than k = {k} entries above -inf")
    # A common offset goes where removing it is exact (the noise keeps its
    # digits); any other shift would round the scores far below it together.
    # (The rounds stay in the scores' dtype: float64 cost 1.5x the time and
    # 2x the memory for noise digits beside a large offset and an outlier.)
    r = without_offset(scores, 1)
    if noise:
        r = r + sample_gumbel(
            scores.shape, dtype=scores.dtype, device=scores.device, generator=generator
        )
    floor = torch.finfo(scores.dtype).min / 4
    # Zeros that keep the graph: at k = 0 they are the result, and untracked
    # zeros would fail ``backward`` (-inf entries are masked before the product;
    # adding +0 turns the products' -0 into 0).
    khot = torch.where(torch.isfinite(r), r, 0.0) * 0 + 0
    for _ in range(k):
        # softmax is shift-invariant: centred at this round's leader, r / tau is
        # at most 0 (no overflow upwards), and once the leaders are excluded
        # the rest are resolved around the next one, not around the first.
        top = r.detach().amax(dim=-1, keepdim=True)
        logits = divide_by_tau(r - torch.where(torch.isfinite(top), top, 0.0), t)
        a = torch.softmax(logits, dim=-1)
        khot = khot + a
        r = r + _log1m_softmax(logits, a).clamp_min(floor)
    return khot


def _log1m_softmax(logits: Tensor, a: Tensor) -> Tensor:
    """``log(1 - softmax(logits))`` ``[..., n]``, exact where ``1 - a`` rounds to 0.

    The soft exclusion of what was just picked. ``log1p(-a)`` is exact for every
    item but the leader (``a <= 1/2``); the leader's ``1 - a`` is the others'
    share, ``logsumexp(others) - logsumexp(all)``, which keeps its whole size
    (a clamp of ``1 - a`` at ``tiny`` stopped at -87 nats in float32, so an item
    leading by more was picked again).
    """
    lead = torch.zeros_like(a, dtype=torch.bool).scatter_(-1, a.argmax(-1, keepdim=True), True)
    # -inf logits (forbidden, or overflowed in the division) at a finite floor:
    # a logsumexp of only -inf terms has a NaN gradient; exp of the floor is 0.
    low = torch.finfo(logits.dtype).min / 2
    floored = logits.clamp_min(low)
    others = torch.logsumexp(floored.masked_fill(lead, low), -1, keepdim=True)
    rest = others - torch.logsumexp(floored, -1, keepdim=True)
    # The leader's entry of log1p is not used; 0 there keeps its gradient finite.
    return torch.where(lead, rest, torch.log1p(-a.masked_fill(lead, 0.0)))
