"""The NRI objective: Gaussian NLL, Gumbel and categorical KLs, the ELBO.

Every term is per graph (``[B]``), as :meth:`LatentLayer.attach` wants it, and
divided by the number of nodes ``n`` as in the reference code.

References:
    Kipf et al., "Neural Relational Inference for Interacting Systems", ICML
    2018, https://arxiv.org/abs/1802.04687.
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from structgrad.distributions.checks import check_int, check_real, check_tensor

from ._layout import tensor_arg

__all__ = ["ELBOTerms", "elbo", "kl_categorical_uniform", "kl_gumbel", "nll_gaussian"]

#: The reference's fixed decoder variance (``--var 5e-5``).
VARIANCE = 5e-5


def nll_gaussian(pred: Tensor, target: Tensor, var: float = VARIANCE) -> Tensor:
    """``Σ_{n,t,d} (pred − target)² / (2 var) / n``, without the constant term.

    Args:
        pred: ``[B, n, T, dims]`` predicted trajectories.
        target: ``[B, n, T, dims]`` true trajectories.
        var: fixed variance of the Gaussian likelihood.

    Returns:
        ``[B]`` negative log-likelihood per graph, divided by ``n``.
    """
    check_tensor(pred, "pred")
    check_tensor(target, "target")
    tensor_arg(pred, "pred", 2)
    var = check_real(var, "var", lo=0.0, strict=True)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    sq = (pred - target).pow(2) / (2.0 * var)
    # a likelihood beyond the dtype's range is reported as its largest value
    return (sq.flatten(1).sum(-1) / pred.shape[1]).clamp(max=torch.finfo(sq.dtype).max)


def kl_gumbel(logits: Tensor, n_nodes: int) -> Tensor:
    """``KL(Gumbel(θ, 1) ‖ Gumbel(0, 1))`` of the utilities, summed, divided by ``n``.

    The analytic KL of a Gumbel with location θ from the standard Gumbel is
    ``θ + e^{−θ} − 1``; the reference sums it over **all** entries of the
    encoder output (every directed pair and edge type, so each undirected edge
    of a tree counts twice). Since the sample is a function of ``U``, this
    bounds the KL of the discrete latent from above.

    Args:
        logits: ``[B, ...]`` location parameters θ (e.g. ``[B, n(n−1), 1]``).
        n_nodes: number of nodes ``n``.

    Returns:
        ``[B]`` KL per graph.
    """
    check_tensor(logits, "logits")
    tensor_arg(logits, "logits", 2)
    n_nodes = check_int(n_nodes, "n_nodes", 1)
    # expm1(-θ) - (-θ) = e^{-θ} - 1 + θ, accurate for θ near 0; in float64, where
    # e^{-θ} overflows only below θ = -709 (float32 overflowed at θ = -88 and
    # summed every entry in float32).
    # θ below -700 would overflow e^{-θ} even in float64 (and its gradient to -inf)
    t = logits.double()
    value = _kl_sum(t.detach().clamp(min=-700.0), n_nodes).clamp(max=torch.finfo(logits.dtype).max)
    # A KL beyond the dtype's range is its largest value, but a clamp of the sum
    # passed no gradient to any edge of the graph (one logit at -89 in float32
    # froze them all): the clamp is in value only. Each entry keeps its gradient
    # (1 - e^{-θ}) / n, with θ held (in value) where e^{-θ} would come within
    # 2^20 of the dtype's largest value, so that it stays finite under an
    # upstream gradient up to 2^20 n; ±inf locations get none (NaN ones a NaN).
    low = 1.0 + 20 * math.log(2.0) - math.log(torch.finfo(logits.dtype).max)
    inside = (t >= low) & (t <= 1e300)
    held = t.detach().clamp(low, 1e300) + (t - t.detach()).nan_to_num(0.0, 0.0, 0.0)
    u = torch.where(inside, t, held)
    terms = torch.expm1(-u) + u
    # (zero in value, entry by entry: a sum of the held terms would overflow)
    path = (terms - terms.detach()).flatten(1).sum(-1) / n_nodes
    return (value + path).to(logits.dtype)


def _kl_sum(t: Tensor, n_nodes: int) -> Tensor:
    """``Σ (e^{-θ} - 1 + θ) / n`` per graph of ``[B, ...]`` locations."""
    return (torch.expm1(-t) + t).flatten(1).sum(-1) / n_nodes


def kl_categorical_uniform(logits: Tensor, n_nodes: int, *, binary: bool = False) -> Tensor:
    """``KL(softmax(θ) ‖ uniform)`` summed over edges, divided by ``n`` (NRI's KL).

    ``Σ p (log p + log C)`` over the ``C`` edge types of every edge, with
    ``log p`` computed by ``log_softmax`` (no ``eps``).

    Args:
        logits: ``[B, ..., C]`` edge-type logits, or ``[B, ...]`` log-odds with ``binary``.
        n_nodes: number of nodes ``n``.
        binary: the logits are log-odds of a binary edge (channels ``(0, θ)``).

    Returns:
        ``[B]`` KL per graph.
    """
    check_tensor(logits, "logits")
    tensor_arg(logits, "logits", 1 if binary else 2)
    n_nodes = check_int(n_nodes, "n_nodes", 1)
    if binary:
        logits = torch.stack([torch.zeros_like(logits), logits], dim=-1)
    logp = torch.log_softmax(logits, dim=-1)
    # 0 · log 0 = 0: a -inf logit (a masked edge type) adds nothing, not 0 · -inf = NaN.
    finite = torch.where(torch.isneginf(logp), 0.0, logp)
    kl = logp.exp() * (finite + math.log(logits.shape[-1]))
    return kl.flatten(1).sum(-1) / n_nodes


class ELBOTerms(NamedTuple):
    """The terms of the NRI ELBO, per graph.

    Attributes:
        nll: ``[B]`` Gaussian negative log-likelihood (divided by ``n``).
        kl: ``[B]`` KL term (divided by ``n``).
    """

    nll: Tensor
    kl: Tensor

    @property
    def loss(self) -> Tensor:
        """``[B]`` negative ELBO ``nll + kl``, the per-sample loss to minimise."""
        return self.nll + self.kl

    @property
    def elbo(self) -> Tensor:
        """``[B]`` ELBO ``−(nll + kl)`` (what the reference reports)."""
        return -(self.nll + self.kl)


def elbo(
    pred: Tensor,
    target: Tensor,
    logits: Tensor,
    *,
    kl: str = "gumbel",
    var: float = VARIANCE,
) -> ELBOTerms:
    """The NRI ELBO terms of predictions ``pred`` of ``target`` under encoder ``logits``.

    Args:
        pred: ``[B, n, T−1, dims]`` decoder predictions.
        target: ``[B, n, T−1, dims]`` frames ``1..T−1`` of the trajectories.
        logits: ``[B, n(n−1), n_out]`` encoder logits (symmetrised for trees).
        kl: ``"gumbel"`` (:func:`kl_gumbel`, the SST default, required for trees
            and top-k), ``"categorical"`` (:func:`kl_categorical_uniform` over
            the ``n_out ≥ 2`` edge types) or ``"binary"`` (the same with
            ``n_out = 1`` log-odds).
        var: decoder variance.

    Returns:
        :class:`ELBOTerms` (``.loss`` for :meth:`LatentLayer.attach`, ``.elbo`` to report).
    """
    n = pred.shape[1]
    nll = nll_gaussian(pred, target, var)
    check_tensor(logits, "logits")
    if logits.dim() < 2 or logits.shape[0] != pred.shape[0]:
        raise ValueError(
            f"logits must be [B, edges, n_out] for the B = {pred.shape[0]} graphs of pred, "
            f"got shape {tuple(logits.shape)}"
        )
    if kl == "gumbel":
        k = kl_gumbel(logits, n)
    elif kl == "categorical":
        k = kl_categorical_uniform(logits, n)
    elif kl == "binary":
        k = kl_categorical_uniform(logits, n, binary=True)
    else:
        raise ValueError(f"kl must be 'gumbel', 'categorical' or 'binary', got {kl!r}")
    return ELBOTerms(nll, k)
