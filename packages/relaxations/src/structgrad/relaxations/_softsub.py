"""The relaxed top-k of Xie and Ermon: k rounds of softmax with soft exclusion.

References:
    Xie and Ermon, "Reparameterizable Subset Sampling via Continuous
    Relaxations", IJCAI 2019, https://arxiv.org/abs/1901.10517.
"""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.distributions import sample_gumbel
from structgrad.distributions.checks import as_tau, check_subset, validation_enabled

__all__ = ["relaxed_top_k"]


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
        tau: temperature > 0.
        noise: add Gumbel noise first.
        generator: optional ``torch.Generator``.

    Returns:
        ``[..., n]`` values in ``[0, 1]`` summing to (at most, up to clamping) ``k``;
        the hard top-k mask as ``tau -> 0``.

    Raises:
        ValueError: on NaN or +inf scores, a bad ``k`` or temperature.
    """
    _, k = check_subset(scores, k)
    if not isinstance(noise, bool):
        raise TypeError(f"noise must be True or False, got {noise!r}")
    t = as_tau(tau, scores)
    if scores.numel() and validation_enabled() and bool(((scores > -torch.inf).sum(-1) < k).any()):
        raise ValueError(f"scores: some row has fewer than k = {k} entries above -inf")
    # softmax is shift-invariant: subtracting the max keeps r / tau finite.
    top = scores.detach().amax(dim=-1, keepdim=True) if scores.numel() else 0.0
    r = scores - top
    if noise:
        r = r + sample_gumbel(
            scores.shape, dtype=scores.dtype, device=scores.device, generator=generator
        )
    tiny = torch.finfo(scores.dtype).tiny
    khot = torch.zeros_like(scores)
    for _ in range(k):
        a = torch.softmax(r / t, dim=-1)
        khot = khot + a
        # Soft exclusion of what was just picked; the clamp keeps log finite.
        r = r + torch.log((1.0 - a).clamp_min(tiny))
    return khot
