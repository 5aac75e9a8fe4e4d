"""Exact marginals of the exponential family over k-subsets.

``p(x) ∝ exp(<θ, x>)`` over ``x ∈ {0,1}^n`` with ``Σx = k``. The partition
function is the elementary symmetric polynomial ``e_k(exp θ)``; the marginal
of item ``i`` is ``exp(θ_i) e_{k-1}(exp θ_{-i}) / e_k(exp θ)``. Both come from a
log-space dynamic program over (item, count): a prefix pass, a suffix pass,
and one combination, all batched. The backward pass is autograd through the
same torch operations, so it is exact (and twice differentiable).

References:
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (top-k SST).
    Swersky et al., "Cardinality Restricted Boltzmann Machines", NeurIPS 2012.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from structgrad.solvers import InvalidScoresError

from ._numerics import hi_and_spread, tracing
from ._utils import RESOLVED_NATS
from .checks import check_subset, validation_enabled

__all__ = ["k_subset_log_partition", "k_subset_marginals"]


def _floor(theta: Tensor, k: int) -> float:
    """A finite stand-in for ``log 0``, for scores ``θ <= 0`` (shifted by their maximum).

    Every reachable ``log e_j`` (``j <= k``) is at least ``j · min θ``; entries
    with no subset start at the floor and, since ``θ <= 0``, grow by at most
    ``log 2`` per item. So ``(k + 1) · min θ − 1000 − n`` stays more than 1000
    nats below every reachable value, where ``exp`` of the difference is exactly
    0. With ``-inf`` instead, every ``logaddexp(-inf, -inf)`` would need masking
    to keep its gradient from being NaN: three extra ops per DP step.
    """
    if not theta.numel() or tracing(theta):
        # Nothing to bound (an empty batch), or nothing can be read: the dtype's
        # floor, exactly as far out of exp's range (the DP runs in float64 then).
        return torch.finfo(theta.dtype).min / 8
    lowest = float(theta.detach().masked_fill(torch.isneginf(theta), 0.0).min().clamp_max(0.0))
    floor = (k + 1) * lowest - 1000.0 - theta.shape[-1]
    return max(floor, torch.finfo(theta.dtype).min / 8)


def _smooth_logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``logaddexp`` whose second derivative stays finite for gaps of 1000 nats.

    torch's double backward of ``logaddexp`` forms ``exp(b − a)``, which
    overflows for the floor entries of the DP; with the (detached) maximum
    taken out first every exponent is ``<= 0``.
    """
    top = torch.maximum(a, b).detach()
    return top + torch.log(torch.exp(a - top) + torch.exp(b - top))


def _prefix_rows(theta: Tensor, k: int, floor: float, *, twice: bool = False) -> Tensor:
    """``A[..., i, j] = log e_j(exp θ_0 .. exp θ_{i-1})`` for ``i in [0, n]``, ``j in [0, k]``.

    Plain torch, differentiable by autograd (``twice=True``: twice, for double
    backward). Entries with no subset (``j > i``) hold the finite ``floor`` of
    :func:`_floor`.
    """
    add = _smooth_logaddexp if twice else torch.logaddexp
    row = theta.new_full((*theta.shape[:-1], k + 1), floor)
    row[..., 0] = 0.0  # e_0 = 1
    rows = [row]
    for column in theta.unsqueeze(-1).unbind(-2):
        # e_j(first i+1) = e_j(first i) + exp(θ_i) e_{j-1}(first i)
        row = add(row, F.pad(row[..., :-1], (1, 0), value=floor) + column)
        rows.append(row)
    return torch.stack(rows, dim=-2)  # [..., n + 1, k + 1]


class _Prefix(torch.autograd.Function):
    """:func:`_prefix_rows` with a hand-written reverse pass.

    Autograd through the DP records ~15 small ops per item. The reverse pass
    here uses the local derivatives of ``A_{i+1} = logaddexp(A_i, shift(A_i) + θ_i)``,
    ``keep = exp(A_i − A_{i+1})`` and ``take = 1 − keep`` (``= ∂A_{i+1}[j] /
    ∂θ_i``; the two add up to 1), computed for all items in one ``exp``, then
    three ops per item: ``G_i = dL/dA_i + keep_i ⊙ G_{i+1} + unshift(take_i ⊙
    G_{i+1})``.
    """

    @staticmethod
    def forward(ctx: Any, theta: Tensor, k: int, floor: float) -> Tensor:
        rows = _prefix_rows(theta, k, floor)
        ctx.save_for_backward(theta, rows)
        ctx.k, ctx.floor = k, floor
        return rows

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        theta, rows = ctx.saved_tensors
        if torch.is_grad_enabled():
            # Double backward: recompute differentiably and let autograd go on.
            (out,) = torch.autograd.grad(
                _prefix_rows(theta, ctx.k, ctx.floor, twice=True), theta, grad, create_graph=True
            )
            return out, None, None
        keep = torch.exp(rows[..., :-1, :] - rows[..., 1:, :])  # [..., n, k + 1]
        # take[j] = exp(A_i[j-1] + θ_i − A_{i+1}[j]) = 1 − keep[j]; at j = 0 both
        # A are exactly 0, so take = 0; for a -inf item keep = 1 and take = 0.
        take = 1.0 - keep
        g = grad[..., -1, :].clone()
        direct, keeps, takes = grad.unbind(-2), keep.unbind(-2), take.unbind(-2)
        per_item = []
        for i in range(theta.shape[-1] - 1, -1, -1):
            moved = g * takes[i]  # the part of G_{i+1} that went through θ_i
            per_item.append(moved)
            g = torch.addcmul(direct[i], g, keeps[i])
            g[..., :-1] += moved[..., 1:]
        return torch.stack(per_item[::-1], dim=-2).sum(-1), None, None


def _prefix(theta: Tensor, k: int) -> Tensor:
    """:func:`_prefix_rows` with the floor of ``theta`` and the fast reverse pass."""
    rows: Tensor = _Prefix.apply(theta, k, _floor(theta, k))
    return rows


# float32 input is worked in float32 while n times the magnitude of the DP's
# values (k times the spread of the finite scores plus log C(n, k), in nats)
# stays within this budget, and in float64 otherwise (see _work).
_FLOAT32_BUDGET = 6000.0


def _work(scores: Tensor, k: int) -> Tensor:
    """``scores`` in the dtype the DP runs in: float64, or float32 when that is accurate.

    ``log e_k`` lies within ``M = k · spread + log C(n, k)`` of the sum of
    the ``k`` largest scores, a marginal is the exponential of a difference of
    two such values, and the DP rounds them ``n`` times, so float32 loses
    digits with ``n · M`` (measured: 4e-3 at n = 100, k = 50 with scores ~100,
    i.e. SST at τ = 0.01; 3e-4 at n = 1000, k = 500 with scores in [0, 0.05]).
    Within :data:`_FLOAT32_BUDGET` the float32 error stays below 1e-4: about
    2e-5 on random scores, 6e-5 for the worst shape found, a few items far
    above the rest (``[160, 50, 30, 20, 15, 10]``, k = 5, whose marginals may
    then exceed 1 by that much); a budget of 1000 would keep 1e-5 but run the
    benchmark's n = 45, k = 9 Gaussian scores (about 3000 of it) 1.6x slower.
    Beyond the budget the DP runs in float64; float64 input always does.
    """
    if scores.dtype == torch.float64 or tracing(scores):
        return scores.to(torch.float64)
    _, spread = hi_and_spread(scores.detach())
    n = scores.shape[-1]
    log_count = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    small = n * (k * spread + log_count) <= _FLOAT32_BUDGET
    return scores.to(torch.float32 if small else torch.float64)


def _shifted(scores: Tensor) -> tuple[Tensor, Tensor]:
    """``(θ − c, c)``: ``c`` ``[..., 1]`` is each row's largest score (detached).

    ``-inf`` entries count as 0 there (a row holding one is shifted by at least
    0). Keeps every ``exp`` in range and ``θ <= 0``, which :func:`_floor` needs.
    """
    shift = scores.masked_fill(torch.isneginf(scores), 0.0).amax(dim=-1, keepdim=True).detach()
    return scores - shift, shift


def _resolved(scores: Tensor, k: int) -> Tensor:
    """``scores`` minus the row's k-th largest, clamped to ``±RESOLVED_NATS`` (``-inf`` kept).

    Marginals resolve scores only within that many nats of the k-th largest:
    further above, an item is in (marginal 1 to within e^-700), further below out.

    The marginals change by less than ``e^-700``, while the DP's values stay
    small: at a spread of 1e20, ``log e_k = -1e20 + log 3`` rounds the ``log 3``
    away, and tied items below the top all got marginal 1.
    """
    neg = torch.isneginf(scores)
    kth = scores.detach().topk(k, dim=-1).values[..., -1:]
    # (fewer than k finite scores, with the checks off: no shift)
    theta = scores - torch.where(torch.isfinite(kth), kth, 0.0)
    return torch.where(neg, -torch.inf, theta.clamp(-RESOLVED_NATS, RESOLVED_NATS))


def _validate(scores: Tensor, k: int) -> tuple[int, int]:
    n, k = check_subset(scores, k)
    if validation_enabled() and (torch.isfinite(scores).sum(dim=-1) < k).any():
        raise InvalidScoresError(
            f"some rows have fewer than k = {k} finite scores: no k-subset exists"
        )
    return n, k


def k_subset_log_partition(scores: Tensor, k: int) -> Tensor:
    """``log Σ_{|x|=k} exp(<θ, x>)`` in log space.

    Args:
        scores: ``[..., n]`` log-potentials θ; ``-inf`` items cannot be chosen.
        k: subset size in ``[0, n]``.

    Returns:
        ``[...]`` log-partition values; ``-inf`` for a row with fewer than ``k``
        finite scores (which raises while values are checked).
    """
    _, k = _validate(scores, k)
    if k == 0:  # e_0 = 1 (the empty set), for any scores, and nothing to reduce
        return 0.0 * scores.masked_fill(torch.isneginf(scores), 0.0).sum(-1) + 0.0
    theta, shift = _shifted(_work(scores, k))
    out = (_prefix(theta, k)[..., -1, k] + k * shift.squeeze(-1)).to(scores.dtype)
    # No k-subset avoids a -inf item (checks off): Z = 0, which the DP's finite
    # floors would put at about -1000 nats.
    out = torch.where(torch.isfinite(scores).sum(-1) < k, -math.inf, out)
    if validation_enabled() and bool(torch.isposinf(out).any()):
        raise InvalidScoresError(f"scores: the k-subset log-partition overflows {scores.dtype}")
    return out


def k_subset_marginals(scores: Tensor, k: int) -> Tensor:
    """Marginals ``P(x_i = 1)`` of ``p(x) ∝ exp(<θ, x>)`` over subsets of size ``k``.

    The exponential-family-entropy relaxation of top-k: it tends to the top-k
    mask as the scores are divided by a temperature going to 0.

    Args:
        scores: ``[..., n]`` log-potentials θ; ``-inf`` items get marginal 0.
        k: subset size in ``[0, n]``.

    Returns:
        ``[..., n]`` marginals in ``[0, 1]`` summing to ``k``, same dtype/device
        (float32 input is computed in float64 when float32 would lose more than
        ~1e-5, see :func:`_work`).

    Raises:
        ValueError: on NaN or +inf scores, ``k`` outside ``[0, n]``, or a row with
            fewer than ``k`` finite scores.
    """
    n, k = _validate(scores, k)
    if k == 0 or k == n:
        # Constant marginals, still attached to the graph (zero gradient); -inf
        # items are zeroed first since 0 * -inf is NaN (k = n forbids -inf).
        return torch.full_like(scores, float(k > 0)) + 0.0 * scores.masked_fill(
            torch.isneginf(scores), 0.0
        )
    theta, _ = _shifted(_resolved(_work(scores, k), k))  # the shift cancels in the ratio below
    # Both passes in one loop (the reversed scores stacked in front): the DP is
    # a chain of small ops, so this halves their number.
    both = _prefix(torch.stack([theta, theta.flip(-1)]), k)  # [2, ..., n + 1, k + 1]
    prefix = both[0]
    suffix = both[1].flip(-2)  # suffix[..., i, j] = log e_j(θ_i .. θ_{n-1})
    log_z = prefix[..., -1, k]
    # log e_{k-1}(all but i) = logsumexp_j prefix[i, j] + suffix[i + 1, k - 1 - j]
    left = prefix[..., :n, :k]  # [..., n, k]
    right = suffix[..., 1:, :k].flip(-1)  # [..., n, k]
    without = torch.logsumexp(left + right, dim=-1)  # [..., n], finite (floors, no -inf)
    log_marginal = theta + without - log_z.unsqueeze(-1)
    return log_marginal.exp().to(scores.dtype)
