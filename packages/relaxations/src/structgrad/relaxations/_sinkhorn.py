"""Log-space Sinkhorn normalisation and the Gumbel-Sinkhorn relaxation of permutations.

References:
    Mena, Belanger, Linderman and Snoek, "Learning Latent Permutations with
    Gumbel-Sinkhorn Networks", ICLR 2018, https://arxiv.org/abs/1802.08665.
"""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.solvers import linear_assignment

from ._gumbel import sample_gumbel, straight_through
from ._utils import as_index, as_tau, check_square

__all__ = ["gumbel_sinkhorn", "sinkhorn"]


def sinkhorn(log_alpha: Tensor, *, n_iters: int = 20, tau: float | Tensor = 1.0) -> Tensor:
    """Doubly-stochastic approximation ``S(log_alpha / tau)`` by alternating normalisation.

    Rows and columns are normalised in log space (``logsumexp``), so large
    scores and small temperatures do not overflow.

    Args:
        log_alpha: ``[..., n, n]`` scores; ``-inf`` entries stay exactly 0.
        n_iters: number of (row, column) normalisation rounds, ``>= 1``.
        tau: temperature > 0.

    Returns:
        ``[..., n, n]`` non-negative matrix whose columns sum to 1 exactly and
        whose rows sum to 1 up to the convergence of the iterations.

    Raises:
        ValueError: on NaN or +inf scores, a non-square input, ``n_iters < 1``,
            or a row or column of ``-inf`` only.
    """
    check_square(log_alpha, "log_alpha", min_size=1)
    n_iters = as_index(n_iters, "n_iters", 1)
    if torch.isneginf(log_alpha).all(-1).any() or torch.isneginf(log_alpha).all(-2).any():
        raise ValueError("log_alpha has a row or column of -inf only: no permutation exists")
    z = log_alpha / as_tau(tau, log_alpha)
    for _ in range(n_iters):
        z = z - torch.logsumexp(z, dim=-1, keepdim=True)
        z = z - torch.logsumexp(z, dim=-2, keepdim=True)
    return z.exp()


def gumbel_sinkhorn(
    log_alpha: Tensor,
    tau: float | Tensor,
    *,
    n_iters: int = 20,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed random permutation: Sinkhorn of Gumbel-perturbed scores at temperature ``tau``.

    Args:
        log_alpha: ``[..., n, n]`` scores.
        tau: temperature > 0.
        n_iters: Sinkhorn rounds.
        hard: forward value the maximum-weight permutation of the perturbed
            scores (Hungarian, :func:`structgrad.solvers.linear_assignment`),
            gradient of the relaxed one (straight-through).
        generator: optional ``torch.Generator``.

    Returns:
        ``[..., n, n]`` doubly-stochastic (or permutation) matrix.
    """
    check_square(log_alpha, "log_alpha", min_size=1)
    noise = sample_gumbel(
        log_alpha.shape, dtype=log_alpha.dtype, device=log_alpha.device, generator=generator
    )
    perturbed = log_alpha + noise
    soft = sinkhorn(perturbed, n_iters=n_iters, tau=tau)
    if not hard:
        return soft
    return straight_through(linear_assignment(perturbed.detach()), soft)
