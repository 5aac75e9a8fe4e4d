"""Exact expectations by enumeration, for checking relaxations and estimators.

torch is imported inside the functions, so this module imports without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["expfamily_marginals", "log_partition"]


def _logits(scores: Any, stack: NDArray[Any], upper: bool) -> tuple[Any, Any]:
    import torch

    configs = torch.from_numpy(np.asarray(stack)).to(dtype=scores.dtype, device=scores.device)
    counted = torch.triu(configs, 1) if upper else configs
    dims = tuple(range(-configs.dim() + 1, 0))
    # A 0 entry contributes nothing even where the score is -inf.
    terms = torch.where(counted != 0, scores.unsqueeze(-configs.dim()) * counted, 0.0)
    return terms.sum(dims), configs


def log_partition(scores: Any, stack: NDArray[Any], *, upper: bool = False) -> Any:
    """``log Σ_x exp<θ, x>`` over the configurations ``stack`` ``[N, ...]``.

    Args:
        scores: torch tensor ``[..., *config_shape]``.
        stack: 0/1 configurations from the enumerators of structgrad.solvers.
        upper: count only the strict upper triangle (undirected spanning trees).
    """
    import torch

    logits, _ = _logits(scores, stack, upper)
    return torch.logsumexp(logits, dim=-1)


def expfamily_marginals(scores: Any, stack: NDArray[Any], *, upper: bool = False) -> Any:
    """``Σ_x x exp<θ, x> / Z`` over ``stack``: exact marginals for tiny instances.

    Args:
        scores: torch tensor ``[..., *config_shape]``.
        stack: ``[N, *config_shape]`` 0/1 configurations.
        upper: count only the strict upper triangle (undirected spanning trees).

    Returns:
        ``[..., *config_shape]`` marginals (differentiable in ``scores``).
    """
    import torch

    logits, configs = _logits(scores, stack, upper)
    weights = torch.softmax(logits, dim=-1)
    return torch.tensordot(weights, configs, dims=1)
