"""The Gumbel-Sinkhorn relaxation of permutations (Mena et al., ICLR 2018).

Sinkhorn itself, with the full reference, is :func:`structgrad.distributions.sinkhorn`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.distributions import sinkhorn, structure
from structgrad.distributions.checks import check_flag, check_square

from ._gumbel import hard_with_soft_gradient
from ._options import checks_options

__all__ = ["gumbel_sinkhorn"]


@checks_options
def gumbel_sinkhorn(
    log_alpha: Tensor,
    tau: float | Tensor,
    *,
    n_iters: int = 20,
    hard: bool = False,
    anneal: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed random permutation: Sinkhorn of Gumbel-perturbed scores at temperature ``tau``.

    Args:
        log_alpha: ``[..., n, n]`` scores.
        tau: temperature > 0.
        n_iters: Sinkhorn rounds.
        hard: forward value the maximum-weight permutation of the perturbed
            scores (the matching Structure's MAP, the Hungarian method of
            :func:`structgrad.solvers.linear_assignment`),
            gradient of the relaxed one (straight-through).
        anneal: ε-scaling stages before the rounds at ``tau`` (see :func:`sinkhorn`).
        generator: optional ``torch.Generator``.

    Returns:
        ``[..., n, n]`` doubly-stochastic (or permutation) matrix.
    """
    check_square(log_alpha, "log_alpha", min_size=1)
    hard = check_flag(hard, "hard")
    # The same noise as sample_gumbel's; a common offset removed where exact.
    perturbed = structure("matching").perturb(log_alpha, generator=generator)
    soft = sinkhorn(perturbed, n_iters=n_iters, tau=tau, anneal=anneal)
    if not hard:
        return soft
    return hard_with_soft_gradient(structure("matching").map(perturbed.detach()), soft)
