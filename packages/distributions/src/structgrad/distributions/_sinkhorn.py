"""Log-space Sinkhorn normalisation: the entropy-regularised relaxation of matchings.

References:
    Mena, Belanger, Linderman and Snoek, "Learning Latent Permutations with
    Gumbel-Sinkhorn Networks", ICLR 2018, https://arxiv.org/abs/1802.08665.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from structgrad.solvers import InvalidScoresError, linear_assignment

from ._numerics import finite_min, tracing
from ._utils import divide_by_tau, finite_shift
from .checks import (
    as_tau,
    check_flag,
    check_int,
    check_options,
    check_square,
    validation_enabled,
)

__all__ = ["sinkhorn"]


def sinkhorn(
    log_alpha: Tensor,
    *,
    n_iters: int = 20,
    tau: float | Tensor = 1.0,
    anneal: bool = False,
    **unknown: Any,
) -> Tensor:
    """Doubly-stochastic approximation ``S(log_alpha / tau)`` by alternating normalisation.

    Rows and columns are normalised in log space (``logsumexp``), so large
    scores and small temperatures do not overflow.

    Plain rounds stall when ``tau`` is far below the spread of the scores: they
    move the dual potentials by about ``tau`` per round, so 20 rounds at
    ``tau = 1e-3`` leave most rows far from a permutation. ``anneal=True`` first
    runs ε-scaling stages (Kosowsky and Yuille 1994; Schmitzer 2019): the
    temperature starts at the scores' spread (rounded up to a power of two) and
    halves down to ``tau``, with
    ``clip(n // 3, 6, 8)`` rounds per stage and the potentials carried from
    stage to stage; then the ``n_iters`` rounds at ``tau``. The limit (the
    Sinkhorn fixed point at ``tau``) is the same, reached in
    ``clip(n // 3, 6, 8) log2(spread / tau)`` extra rounds (all differentiated);
    when ``tau`` is at least the spread nothing changes.

    Args:
        log_alpha: ``[..., n, n]`` scores; ``-inf`` entries stay exactly 0.
        n_iters: number of (row, column) normalisation rounds at ``tau``, ``>= 1``.
        tau: temperature > 0, a float or a tensor broadcastable to ``[..., 1, 1]``.
        anneal: run the ε-scaling stages first. Their number is read from the
            scores; under ``torch.compile`` (which cannot read it) 16 stages
            are unrolled and those past the number masked: the same result
            while ``spread / tau <= 2**16``; beyond, each of the 16 stages
            divides the temperature by more than 2, and past about ``2**36``
            some rows no longer converge (2-16 % of random matrices; eager
            runs more stages). Each matrix counts its own stages (from its
            own spread / τ; the surplus of its batch mates' is masked), so
            its result does not depend on the rest of the batch.
        **unknown: none is taken: an old name (``temperature``) raises a
            ``ValueError`` naming ``tau``, another one lists the options.

    Returns:
        ``[..., n, n]`` non-negative matrix whose columns sum to 1 exactly and
        whose rows sum to 1 up to the convergence of the iterations.

    Raises:
        ValueError: on an option it does not take, NaN or +inf scores, a
            non-square input, ``n_iters < 1``, ``-inf`` entries that no
            permutation avoids, or a temperature that varies within a matrix
            (the max shift before the division is exact for one per matrix only).
    """
    if unknown:  # a ValueError, as the layers give, not Python's TypeError
        check_options("sinkhorn", unknown, ("log_alpha", "n_iters", "tau", "anneal"))
    check_square(log_alpha, "log_alpha", min_size=1)
    n_iters = check_int(n_iters, "n_iters", 1)
    anneal = check_flag(anneal, "anneal")
    _check_support(log_alpha)
    t = as_tau(tau, log_alpha, event_dims=(-2, -1))
    if not log_alpha.numel():  # an empty batch
        return log_alpha.exp()
    # Sinkhorn is invariant to a constant per matrix: shifting by the max keeps
    # log_alpha / tau finite for scores up to the dtype's largest value.
    forbidden = torch.isneginf(log_alpha)
    shifted = log_alpha - finite_shift(log_alpha.amax(dim=(-1, -2), keepdim=True))
    # (-3e38 minus 3e38 must not become -inf)
    log_alpha = _floor_allowed(shifted, -torch.finfo(log_alpha.dtype).max, forbidden)
    start = log_alpha
    if anneal:
        # The stages run in float64: at float32 the potentials of scores ~1e30
        # apart lose every digit to cancellation (and their gradients turn NaN).
        wide = torch.float64 if log_alpha.dtype == torch.float32 else log_alpha.dtype
        g = _annealed_column_potentials(log_alpha.to(wide), t.to(wide))
        start = log_alpha + g.to(log_alpha.dtype)
    z = divide_by_tau(start, t)
    # Scores a float32 range apart overflow to -inf once divided by tau, and a
    # row of -inf only would make the normalisation NaN: finite entries stay
    # above -max/4 (exp of the difference is 0 all the same); -inf stays -inf.
    z = _floor_allowed(z, -torch.finfo(z.dtype).max / 4, forbidden)
    for _ in range(n_iters):
        z = z - torch.logsumexp(z, dim=-1, keepdim=True)
        z = z - torch.logsumexp(z, dim=-2, keepdim=True)
    return z.exp()


def _floor_allowed(x: Tensor, floor: float | Tensor, forbidden: Tensor) -> Tensor:
    """``x`` floored at ``floor`` except where ``forbidden`` (those stay ``-inf``)."""
    return torch.where(forbidden, -torch.inf, torch.clamp(x, min=floor))


def _check_support(log_alpha: Tensor) -> None:
    """Raise unless every matrix has a permutation avoiding its ``-inf`` entries.

    Without one, Sinkhorn has no doubly-stochastic limit and silently returns
    rows that do not sum to 1. Checked by one assignment on the 0 / ``-inf``
    pattern (it uses a ``-inf`` pair only when it must).
    """
    if not validation_enabled():  # a value check: off, or torch.compile is tracing
        return
    forbidden = torch.isneginf(log_alpha)
    if not forbidden.any():
        return
    if forbidden.all(-1).any() or forbidden.all(-2).any():
        raise InvalidScoresError(
            "log_alpha has a row or column of -inf only: no permutation exists"
        )
    forbidden = forbidden.cpu()
    pattern = torch.zeros(forbidden.shape, dtype=torch.float64).masked_fill_(forbidden, -torch.inf)
    if (linear_assignment(pattern).bool() & forbidden).any():
        raise InvalidScoresError(
            "the -inf entries of log_alpha leave no permutation (no perfect matching "
            "avoids them): Sinkhorn has no doubly-stochastic limit"
        )


# ε-scaling schedule: the temperature halves per stage, n // 3 rounds each
# (at least 6, at most 8: measured, n = 20 at tau = 1e-3 needs 6 to round to
# the assignment in 99 % of samples, 3 leave 16 % off; with 3 at n = 6, 11 %
# of random matrices masked by -1e9 stayed off a permutation at tau = 0.1 and
# 1.5 % of -inf-masked ones at n = 10, tau = 0.01; with 6, none).
_STAGE_FACTOR = 0.5
_MIN_STAGE_ROUNDS, _MAX_STAGE_ROUNDS = 6, 8
_MAX_STAGES = 64  # spread / tau up to 2**64; beyond, the last stages are skipped
_TRACED_STAGES = 16  # under torch.compile (unrolled); beyond 2**16, larger steps


def _annealed_column_potentials(log_alpha: Tensor, tau: Tensor) -> Tensor:
    """Column potentials ``g`` ``[..., 1, n]`` (score units) after the ε-scaling stages."""
    # The scores are max-shifted (<= 0). Entries more than 2**60 τ below the max
    # weigh nothing at the temperatures that matter; floored there, the schedule
    # stays within _MAX_STAGES and its numbers in range (a -1e30 masking value
    # would otherwise start it at 2**100). -inf entries stay -inf.
    log_alpha = _floor_allowed(log_alpha, tau.detach() * -(2.0**60), torch.isneginf(log_alpha))
    values = log_alpha.detach().flatten(-2)  # no NaN, +inf or all -inf matrix (checked)
    spread = (values.amax(dim=-1) - finite_min(values, -1))[..., None, None]
    # The schedule starts at the spread rounded up to a power of two: constant
    # under small changes of the scores, so the computation stays one smooth
    # function of them (gradcheck) and needs no gradient of its own.
    # (capped below the dtype's largest power of two: a spread of ~1e38 in
    # float32 would round up to 2**128 = inf)
    cap = math.ldexp(1.0, math.frexp(torch.finfo(log_alpha.dtype).max)[1] - 1)
    start = torch.exp2(torch.ceil(torch.log2(spread))).clamp(max=cap)
    g = torch.zeros_like(log_alpha[..., :1, :])
    # One count per matrix ``[..., 1, 1]``, the same on both paths: the stages
    # past it are masked, so a matrix's result does not depend on its batch
    # mates (one count for the batch, its widest, gave the narrow matrices
    # extra rounds at τ, which moved them by up to 5e-3 at τ = 0.1).
    count = _stage_count(start / tau.detach())
    if tracing(log_alpha):
        # torch.compile cannot read the count: _TRACED_STAGES stages, those past
        # the count masked (the same result); a longer count is spread over
        # them, each stage dividing the temperature by more than 2.
        stride = torch.clamp(count / _TRACED_STAGES, min=1.0)
        for stage in range(_TRACED_STAGES):
            t = torch.maximum(start * torch.pow(_STAGE_FACTOR, stage * stride), tau)
            g = torch.where(stage < count, _stage(log_alpha, g, t), g)
        return g
    for stage in range(int(count.max())):  # eager: the longest count is read on the host
        t = torch.maximum(start * _STAGE_FACTOR**stage, tau)
        g = torch.where(stage < count, _stage(log_alpha, g, t), g)
    return g


def _stage_count(ratio: Tensor) -> Tensor:
    """Stages that halve the temperature from ``ratio · τ`` to ``τ`` (0 if ``ratio <= 1``)."""
    # (an infinite ratio, from a spread past the dtype's range: the most stages)
    count = torch.ceil(torch.log(ratio) / -math.log(_STAGE_FACTOR)).clamp(0, _MAX_STAGES)
    return torch.where(ratio > 1.0, count, torch.zeros_like(count))


def _stage(log_alpha: Tensor, g: Tensor, t: Tensor) -> Tensor:
    """The column potentials ``g`` after one stage: its rounds at temperature ``t``."""
    rounds = min(max(log_alpha.shape[-1] // 3, _MIN_STAGE_ROUNDS), _MAX_STAGE_ROUNDS)
    for _ in range(rounds):
        # Potentials in score units, so they carry over when t changes.
        f = -t * torch.logsumexp(divide_by_tau(log_alpha + g, t), -1, keepdim=True)
        g = -t * torch.logsumexp(divide_by_tau(log_alpha + f, t), -2, keepdim=True)
        # Sinkhorn ignores a constant added to every column potential, and
        # a large one (a -1e9 masking value drifts them by ~1e7) would round
        # away their O(τ) differences in log_alpha + g: keep their max at 0.
        g = g - finite_shift(g.amax(-1, keepdim=True))
    return g
