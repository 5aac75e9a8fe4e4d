"""Gumbel noise, Gumbel-softmax (concrete) and binary concrete, with straight-through.

References:
    Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax",
    ICLR 2017, https://arxiv.org/abs/1611.01144.
    Maddison, Mnih and Teh, "The Concrete Distribution", ICLR 2017,
    https://arxiv.org/abs/1611.00712.
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor

from structgrad.distributions import divide_by_tau, sample_gumbel, sample_uniform
from structgrad.distributions.checks import (
    as_tau,
    check_flag,
    check_tensor,
    check_values,
    validation_enabled,
)
from structgrad.solvers import InvalidScoresError

from ._options import checks_options

__all__ = ["binary_concrete", "gumbel_softmax", "hard_with_soft_gradient", "sample_gumbel"]


def hard_with_soft_gradient(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward value ``hard``, gradient of ``soft``: ``hard - soft.detach() + soft``."""
    check_tensor(hard, "hard")
    check_tensor(soft, "soft")
    if hard.shape != soft.shape:
        raise ValueError(f"hard {tuple(hard.shape)} and soft {tuple(soft.shape)} must match")
    return hard - soft.detach() + soft


@checks_options
def gumbel_softmax(
    logits: Tensor,
    tau: float | Tensor,
    *,
    hard: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed one-hot sample ``softmax((logits + G) / tau)`` (the concrete distribution).

    Args:
        logits: ``[..., n, ...]`` unnormalised log-probabilities; ``-inf`` marks
            impossible categories (probability exactly 0).
        tau: temperature > 0, a float or a tensor broadcastable to ``logits``
            with size 1 along ``dim`` (one per slice).
        hard: return the one-hot argmax of the perturbed logits in the forward pass
            and the relaxed sample's gradient (straight-through Gumbel-softmax).
        dim: the category dimension.
        generator: optional ``torch.Generator``.

    Returns:
        A tensor shaped like ``logits`` that sums to 1 along ``dim``.

    Raises:
        ValueError: on a non-positive temperature, NaN logits, or a slice whose
            logits are all ``-inf``.
    """
    _check_logits(logits, dim)
    hard = check_flag(hard, "hard")
    t = as_tau(tau, logits, event_dims=(dim,))
    noise = sample_gumbel(
        logits.shape, dtype=logits.dtype, device=logits.device, generator=generator
    )
    # Softmax is shift-invariant: subtracting the max keeps logits + noise finite
    # up to the dtype's largest value, and the perturbed max at 0 keeps every
    # quotient <= 0 at any tau (a subnormal one overflows downwards only).
    logits = logits - logits.detach().amax(dim=dim, keepdim=True)
    perturbed = logits + noise
    perturbed = perturbed - perturbed.detach().amax(dim=dim, keepdim=True)
    # (a learned tau keeps a finite gradient where some logits are -inf)
    scaled = divide_by_tau(perturbed, t)
    # log_softmax subtracts the max before exponentiating: finite at tiny tau.
    soft = torch.log_softmax(scaled, dim=dim).exp()
    if not hard:
        return soft
    index = perturbed.argmax(dim=dim, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(dim, index, 1.0)
    return hard_with_soft_gradient(one_hot, soft)


@checks_options
def binary_concrete(
    logits: Tensor,
    tau: float | Tensor,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed Bernoulli sample ``sigmoid((logits + L) / tau)`` with logistic noise ``L``.

    Args:
        logits: ``[...]`` log-odds of each independent binary variable.
        tau: temperature > 0, a float or a tensor broadcastable to ``logits``.
        hard: forward value ``1[logits + L > 0]`` with the relaxed gradient.
        generator: optional ``torch.Generator``.

    Returns:
        A tensor shaped like ``logits`` with values in ``[0, 1]``.

    Raises:
        ValueError: on a non-positive temperature or NaN logits.
    """
    check_tensor(logits, "logits")
    hard = check_flag(hard, "hard")
    if logits.numel():
        check_values(logits, "logits")
    t = as_tau(tau, logits)
    u = sample_uniform(logits.shape, dtype=logits.dtype, device=logits.device, generator=generator)
    # Logistic noise log(u) - log(1 - u); log1p keeps precision near u = 0.
    noise = torch.log(u) - torch.log1p(-u)
    perturbed = logits + noise
    soft = torch.sigmoid(divide_by_tau(perturbed, t))
    if not hard:
        return soft
    return hard_with_soft_gradient((perturbed > 0).to(soft.dtype), soft)


def _check_logits(logits: Tensor, dim: int) -> None:
    check_tensor(logits, "logits")
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension")
    try:  # an int, or an integer numpy scalar
        index = None if isinstance(dim, bool) else operator.index(dim)
    except TypeError:
        index = None
    if index is None or not -logits.dim() <= index < logits.dim():
        raise ValueError(f"dim must be an int in [{-logits.dim()}, {logits.dim()}), got {dim!r}")
    if logits.shape[dim] == 0:
        raise ValueError("logits need at least one category (n >= 1), got n = 0")
    if not validation_enabled():
        return
    if torch.isnan(logits).any():
        raise InvalidScoresError("logits contain NaN")
    if torch.isposinf(logits).any():
        raise InvalidScoresError("logits contain +inf")
    if torch.isneginf(logits).all(dim=dim).any():
        raise InvalidScoresError("every logit of some slice is -inf: no category can be chosen")
