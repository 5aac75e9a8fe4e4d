"""Gibbs laws ``p(x) ∝ exp(<θ, x>)`` over k-subsets, spanning trees and arborescences.

Each is a :class:`torch.distributions.Distribution` with an exact ``sample``
(sequential DP for k-subsets, Wilson's algorithm for trees), the stochastic
softmax trick as ``rsample`` (the marginals of ``(θ + G) / τ``), and the
exponential-family identities ``H = log Z − <θ, μ>`` and
``KL(p ‖ q) = log Z_q − log Z_p + <θ_p − θ_q, μ_p>``.

References:
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063.
    Wainwright and Jordan, "Graphical Models, Exponential Families, and
    Variational Inference", 2008 (the identities).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import register_kl
from torch.distributions.utils import lazy_property

from ._law import StructuredLaw
from ._numerics import widened, without_offset
from ._sampled import sample_size

__all__ = ["Arborescence", "KSubset", "SpanningTree"]


class _Gibbs(StructuredLaw):
    """``p(x) ∝ exp(<θ, x>)`` over the structures of :attr:`structure_name`."""

    has_rsample = True
    structure_name: ClassVar[str]

    @lazy_property
    def log_partition(self) -> Tensor:
        """``[...]`` ``log Z(θ) = log Σ_x exp(<θ, x>)``."""
        return self.structure.log_partition(self.logits, **self.options)

    @lazy_property
    def marginals(self) -> Tensor:
        """``μ = E[x] = ∂ log Z / ∂ θ``, like ``logits``; differentiable."""
        log_z, mu = self.structure.log_partition_and_marginals(self.logits, **self.options)
        if "log_partition" not in self.__dict__:  # one evaluation serves both (entropy)
            self.log_partition = log_z
        return mu

    @property
    def mean(self) -> Tensor:
        return self.marginals

    @property
    def variance(self) -> Tensor:
        """``μ (1 − μ)``: each entry of a structure is 0 or 1 (Bernoulli with mean ``μ``)."""
        return self.marginals * (1 - self.marginals)

    def log_prob(self, value: Tensor) -> Tensor:
        """``<θ, x> − log Z`` of structures ``value`` ``[*sample, ..., *event]``.

        ``-inf`` where ``value`` is not a structure of the support (not 0/1, the
        wrong size, not a tree of its graph, an entry past a length) or uses a
        forbidden entry.

        Raises:
            TypeError: ``value`` is not a tensor.
            ValueError: ``value`` does not end in the event shape, or (with
                ``validate_args``) has an entry that is not 0/1.
        """
        self._check_value(value)
        theta, log_z = self._exact_logits, self._exact_log_partition
        # log p <= 0: the clamp undoes rounding where p is about 1 (|θ| ~ 1e13 in float64).
        log_p = _clamped(self.structure.score(theta, value, **self.options) - log_z, max=0.0)
        inside = self.structure.contains(self.logits, value, **self.options)
        log_p = torch.where(inside, log_p, torch.full_like(log_p, -torch.inf))
        return log_p.to(self.logits.dtype)

    @lazy_property
    def _exact_logits(self) -> Tensor:
        """θ for ``log p``, ``H`` and ``KL``: float64, less each instance's common offset.

        They are small differences of numbers of θ's size (``<θ, x>``, ``log Z``):
        float32 rounds them to those numbers' ulp (at an offset of 1e6 its
        probabilities summed to 0.93-1.12, past 1e6 the gradients cancelled to
        ``inf − inf``), and so does float64 at an offset of 1e13 (at 1e20 every
        tree had probability 1). Every structure has as many ones (k items, n − 1
        edges), so the offset leaves the law as it is; it is removed where that
        is exact (:func:`without_offset`).
        """
        theta = widened(self.logits)
        read = self.structure.offset_read(theta, **self.options)
        return without_offset(theta, self.structure.event_dim, read)

    @lazy_property
    def _exact_log_partition(self) -> Tensor:
        """``log Z`` of :attr:`_exact_logits`."""
        return self.structure.log_partition(self._exact_logits, **self.options)

    @lazy_property
    def _exact_stats(self) -> tuple[Tensor, Tensor]:
        """``(log Z, μ)`` of :attr:`_exact_logits`, from one evaluation.

        Its own graph, not :attr:`_exact_log_partition`'s: ``log_prob(x).backward()``
        then ``entropy().backward()`` would otherwise go through one graph twice.
        """
        return self.structure.log_partition_and_marginals(self._exact_logits, **self.options)

    def entropy(self) -> Tensor:
        """``[...]`` ``H = log Z − <θ, μ>``."""
        (log_z, mu), theta = self._exact_stats, self._exact_logits
        h = log_z - self.structure.score(theta, mu, **self.options)
        # H >= 0: the clamp undoes rounding where the law is about a point mass.
        return _clamped(h, min=0.0).to(self.logits.dtype)

    def _draw(self, sample_shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        """Exact samples of the Gibbs law, ``[*sample_shape, ..., *event]`` 0/1."""
        return self.structure.sample(self.logits, sample_shape, generator=generator, **self.options)

    def rsample(
        self,
        sample_shape: Sequence[int] = torch.Size(),
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The stochastic softmax trick: marginals of ``(θ + G) / τ`` (relaxed, differentiable).

        Its law is not the Gibbs law; as ``τ → 0`` it tends to the perturb-and-MAP
        sample ``MAP(θ + G)``.
        """
        shape = self._extended_shape(sample_size(sample_shape))
        theta = self.logits.expand(shape)
        noisy = self.structure.perturb(theta, generator=generator, **self.options)
        return self.structure.relax(noisy, tau=self.tau, **self.options)


class KSubset(_Gibbs):
    """``p(x) ∝ exp(<θ, x>)`` over the subsets of exactly ``k`` of ``n`` items.

    Args:
        logits: ``[..., n]`` log-potentials θ; ``-inf`` items are never chosen.
        k: the subset size, in ``[0, n]``.
        tau: temperature of :meth:`rsample` (a float, or one per instance: a tensor
            broadcastable to ``logits`` with size 1 along the event dims).
        validate_args: as for every torch distribution.

    Samples are ``[..., n]`` 0/1 masks; :meth:`sample` is exact (sequential DP).
    """

    structure_name = "k_subset"

    def __init__(
        self,
        logits: Tensor,
        k: int,
        tau: float | Tensor = 1.0,
        validate_args: bool | None = None,
        **unknown: Any,
    ) -> None:
        self._setup(self.structure_name, logits, tau, validate_args, k=k, **unknown)

    @property
    def k(self) -> int:
        """The subset size."""
        k: int = self.options["k"]
        return k


class SpanningTree(_Gibbs):
    """``p(T) ∝ exp(Σ_{e∈T} θ_e)`` over the spanning trees of ``K_n``.

    Args:
        logits: ``[..., n, n]`` edge log-potentials; only the strict upper triangle
            is read; ``-inf`` forbids an edge.
        lengths: optional ``[...]`` graph sizes in ``[1, n]`` (vertices past a
            length are not in the graph).
        tau: temperature of :meth:`rsample` (a float, or one per instance: a tensor
            broadcastable to ``logits`` with size 1 along the event dims).
        validate_args: as for every torch distribution.

    Samples are symmetric ``[..., n, n]`` adjacencies; :meth:`sample` is exact
    (Wilson's algorithm).
    """

    structure_name = "spanning_tree"

    def __init__(
        self,
        logits: Tensor,
        lengths: Tensor | None = None,
        tau: float | Tensor = 1.0,
        validate_args: bool | None = None,
        **unknown: Any,
    ) -> None:
        self._setup(self.structure_name, logits, tau, validate_args, lengths=lengths, **unknown)


class Arborescence(_Gibbs):
    """``p(A) ∝ exp(Σ_{(i→j)∈A} θ_ij)`` over the arborescences rooted at ``root``.

    Args:
        logits: ``[..., n, n]`` log-potentials, entry ``[i, j]`` for the edge ``i → j``
            (the diagonal and column ``root`` are not read); ``-inf`` forbids an edge.
        root: the root vertex.
        lengths: optional ``[...]`` graph sizes in ``[root + 1, n]``.
        tau: temperature of :meth:`rsample` (a float, or one per instance: a tensor
            broadcastable to ``logits`` with size 1 along the event dims).
        validate_args: as for every torch distribution.

    Samples are ``[..., n, n]`` adjacencies; :meth:`sample` is exact (Wilson's algorithm).
    """

    structure_name = "arborescence"

    def __init__(
        self,
        logits: Tensor,
        root: int = 0,
        lengths: Tensor | None = None,
        tau: float | Tensor = 1.0,
        validate_args: bool | None = None,
        **unknown: Any,
    ) -> None:
        # ``unknown``: refused by _setup with the accepted names (an old one names its new one).
        self._setup(
            self.structure_name, logits, tau, validate_args, root=root, lengths=lengths, **unknown
        )


def _inside(d: _Gibbs) -> Tensor:
    """``[..., n]`` mask of the vertices inside each graph of ``d`` (all without lengths)."""
    mask = d.structure.lengths_mask(d.logits, d.options.get("lengths"))
    return torch.ones(d.event_shape[-1:], dtype=torch.bool) if mask is None else mask.cpu()


def _same_support(p: _Gibbs, q: _Gibbs) -> None:
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: event shapes differ, {p.event_shape} vs {q.event_shape}")
    for key in ("k", "root"):
        if p.options.get(key) != q.options.get(key):
            raise ValueError(f"kl_divergence: {key} differs ({p.options[key]} vs {q.options[key]})")
    if "lengths" in p.options and not bool((_inside(p) == _inside(q)).all()):
        raise ValueError("kl_divergence: the two laws have different lengths")


def _kl(p: _Gibbs, q: _Gibbs) -> Tensor:
    """``KL(p ‖ q) = log Z_q − log Z_p + <θ_p − θ_q, μ_p>``.

    ``+inf`` where ``q`` forbids an entry that ``p`` uses. Each law's offset
    (``_exact_logits``) cancels: ``μ_p`` has as many ones as any structure.
    """
    _same_support(p, q)
    dtype = torch.promote_types(p.logits.dtype, q.logits.dtype)
    (log_zp, mu), theta_p, theta_q = p._exact_stats, p._exact_logits, q._exact_logits
    cross = p.structure.score(theta_p, mu, **p.options) - q.structure.score(
        theta_q, mu, **q.options
    )
    kl = q._exact_log_partition - log_zp + cross
    return _clamped(kl, min=0.0).to(dtype)  # KL >= 0: the clamp undoes rounding (p ≈ q)


def _clamped(x: Tensor, **bound: float) -> Tensor:
    """``x.clamp(**bound)`` in value, with ``x``'s gradient (tiny true slopes survive).

    Entries inside the bound are ``x`` itself (``-inf`` included: ``-inf - -inf``
    would be NaN).
    """
    y = x.clamp(**bound)
    return torch.where(y == x, x, x + (y - x).detach())


for _cls in (KSubset, SpanningTree, Arborescence):
    register_kl(_cls, _cls)(_kl)
