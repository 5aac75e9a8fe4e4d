"""Pathwise latent layers: SSTs, Gumbel-softmax, independent edges, solver wrappers."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import structgrad.estimators as est
from structgrad.distributions import Structure
from structgrad.relaxations import gumbel_softmax, independent_edges, sst

from ._layer import LatentLayer
from ._structure import IndependentEdges

__all__ = ["ESTIMATORS", "EstimatorLayer", "GumbelSoftmaxLayer", "IndepEdgesLayer", "SSTLayer"]

#: Solver-wrapping methods and the structgrad.estimators class each one builds.
ESTIMATORS: dict[str, Any] = {
    "imle": est.IMLE,
    "aimle": est.AIMLE,
    "ste": est.StraightThrough,
    "blackbox": est.Blackbox,
    "perturbed": est.PerturbedOptimizer,
}


def _hard_options(structure: Structure, options: dict[str, Any]) -> dict[str, Any]:
    """The structure's own options among ``options`` (what :meth:`sample_hard` passes on)."""
    return {k: v for k, v in options.items() if k in structure.option_names}


class SSTLayer(LatentLayer):
    """Stochastic softmax trick: exact exponential-family marginals of ``(θ + G)/τ``.

    ``z = argmax_{x ∈ conv 𝒳} <U, x> − τ Ω(x)`` with ``U = θ + G`` and Ω the
    exponential-family entropy: spanning trees by the Matrix-Tree theorem
    (clipped to ``max_range``), k-subsets by the DP over elementary symmetric
    polynomials, arborescences by the directed Matrix-Tree theorem, matchings
    by Gumbel-Sinkhorn. With ``straight_through=True`` (method ``"st-sst"``) the
    forward value is the exact MAP of ``U`` and the gradient is the relaxed one.
    The utilities ``U`` are kept in :attr:`utilities`.

    Args:
        structure: a relaxable structure (``spanning_tree``, ``k_subset``,
            ``arborescence`` or ``matching``).
        method: ``sst`` or ``st-sst``.
        tau: temperature τ > 0.
        straight_through: hard forward value, relaxed gradient.
        **options: the structure's ``option_names`` and ``relax_option_names``:
            ``max_range`` (trees), ``k`` (k-subset), ``root``, ``lengths`` (trees,
            fixed for every call), ``n_iters`` and ``anneal`` (matching, see
            :func:`structgrad.relaxations.sinkhorn`).

    References:
        Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
        NeurIPS 2020, https://arxiv.org/abs/2006.08063.
    """

    structure: Structure

    def __init__(
        self,
        structure: Structure,
        method: str,
        *,
        tau: float = 1.0,
        straight_through: bool = False,
        **options: Any,
    ) -> None:
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        accepted = {*structure.option_names, *structure.relax_option_names}
        unknown = set(options) - accepted
        if unknown:
            raise ValueError(
                f"{method} on {structure.name} takes tau, straight_through and "
                f"{sorted(accepted)}; got {sorted(unknown)}"
            )
        super().__init__(structure, method, **_hard_options(structure, options))
        self.tau = float(tau)
        self.straight_through = bool(straight_through)
        self.sst_options = options

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Relaxed (or straight-through) sample shaped like ``logits`` ``[*batch, *event]``."""
        z, u = sst(
            self.structure.name,
            logits,
            self.tau,
            straight_through=self.straight_through,
            generator=generator,
            return_utilities=True,
            **self.sst_options,
        )
        self.utilities = u
        return z

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}, straight_through={self.straight_through}"


class GumbelSoftmaxLayer(LatentLayer):
    """Gumbel-softmax (concrete) categorical sample; ``hard=True`` is straight-through.

    Args:
        structure: the ``categorical`` structure.
        method: ``gumbel-softmax`` or ``st``.
        tau: temperature τ > 0.
        hard: one-hot forward value, relaxed gradient (method ``"st"``).

    References:
        Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax",
        ICLR 2017, https://arxiv.org/abs/1611.01144.
    """

    def __init__(
        self, structure: Structure, method: str, *, tau: float = 1.0, hard: bool = False
    ) -> None:
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        super().__init__(structure, method)
        self.tau = float(tau)
        self.hard = bool(hard)

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Sample ``[*batch, n]`` summing to 1 over the last dim."""
        return gumbel_softmax(logits, self.tau, hard=self.hard, generator=generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}, hard={self.hard}"


class IndepEdgesLayer(LatentLayer):
    """Independent edges: one binary concrete (or ``C``-way Gumbel-softmax) per edge.

    The NRI / SST baseline latent graph. ``logits`` ``[*batch, n, n]`` are the
    log-odds of each directed edge; with ``categorical=True`` they are
    ``[*batch, n, n, C]`` edge-type logits (NRI's 2-channel variant, channel 0
    "no edge"). ``symmetric=True`` averages ``(i, j)`` and ``(j, i)`` and shares
    the noise, so the sample is an undirected graph.

    Args:
        structure: the pseudo-structure ``edges`` (:data:`~._structure.EDGES`).
        method: ``indep``.
        tau: temperature τ > 0.
        symmetric: symmetrise logits and noise.
        categorical: edge-type channels in the last dim.
        straight_through: hard forward value, relaxed gradient.

    References:
        Kipf et al., "Neural Relational Inference for Interacting Systems",
        ICML 2018, https://arxiv.org/abs/1802.04687.
        Maddison, Mnih and Teh, "The Concrete Distribution", ICLR 2017,
        https://arxiv.org/abs/1611.00712.
    """

    def __init__(
        self,
        structure: IndependentEdges,
        method: str,
        *,
        tau: float = 1.0,
        symmetric: bool = False,
        categorical: bool = False,
        straight_through: bool = False,
    ) -> None:
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        super().__init__(structure, method, symmetric=bool(symmetric), categorical=categorical)
        self.tau = float(tau)
        self.straight_through = bool(straight_through)

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Sample shaped like ``logits`` with a zero diagonal."""
        return independent_edges(
            logits,
            self.tau,
            symmetric=self.options["symmetric"],
            categorical=self.options["categorical"],
            hard=self.straight_through,
            generator=generator,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}, straight_through={self.straight_through}"


class EstimatorLayer(LatentLayer):
    """A solver-wrapping estimator of :mod:`structgrad.estimators` as a latent layer.

    ``imle`` (:class:`structgrad.estimators.IMLE`), ``aimle``
    (:class:`~structgrad.estimators.AIMLE`, ``difference="forward"|"central"``),
    ``ste`` (perturb-and-MAP straight-through,
    :class:`~structgrad.estimators.StraightThrough` with Gumbel noise),
    ``blackbox`` (:class:`~structgrad.estimators.Blackbox`) and ``perturbed``
    (:class:`~structgrad.estimators.PerturbedOptimizer`). Options go to the
    estimator; the estimator module (and its state, e.g. AIMLE's adaptive λ)
    is :attr:`estimator`, so it is in ``state_dict()``.

    Args:
        structure: a structure whose MAP is ``argmax_z <z, θ>`` (``nonlinear`` is
            ``None``; see ``structgrad.estimators.PERTURBATION_STRUCTURES``).
        method: one of :data:`ESTIMATORS`.
        **options: the estimator's options (``k`` for k-subsets, ``root``, ...).
    """

    def __init__(self, structure: Structure, method: str, **options: Any) -> None:
        super().__init__(structure, method, **_hard_options(structure, options))
        if method == "ste":
            options = {"noise": "gumbel", **options}
        try:
            self.estimator: nn.Module = ESTIMATORS[method](structure.name, **options)
        except TypeError as err:
            raise ValueError(f"{method} on {structure.name}: bad options ({err})") from err

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Perturbed MAP sample shaped like ``logits`` (``[S, ...]`` with ``samples=S``)."""
        out: Tensor = self.estimator(logits, generator=generator)
        return out
