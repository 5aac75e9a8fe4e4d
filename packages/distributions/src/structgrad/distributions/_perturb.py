"""The perturb-and-MAP law: the MAP structure of Gumbel-perturbed scores.

``x = MAP(θ + G)`` is cheap to draw for every structure with a solver, but its
law is not the Gibbs law ``∝ exp(<θ, x>)`` except for categorical variables
(Gumbel-max); for spanning trees or arborescences the probability that a given
structure is the perturbed MAP has no closed form.

References:
    Papandreou and Yuille, "Perturb-and-MAP Random Fields", ICCV 2011.
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063 (the relaxed sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ._ksubset import plackett_luce_set_log_prob
from ._law import StructuredLaw
from ._sampled import sample_size
from ._structure import Structure
from ._utils import dot
from .checks import validation_enabled

__all__ = ["PerturbAndMAP"]

#: Largest k whose Plackett-Luce set probability is computed (a DP over 2^k subsets).
MAX_SET_K = 10


class PerturbAndMAP(StructuredLaw):
    """``x = MAP(θ + G)`` with i.i.d. standard Gumbel ``G`` (symmetric for undirected graphs).

    Args:
        structure: a structure name (``"spanning_tree"``, ...) or :class:`Structure`.
        logits: scores θ of the structure's shape.
        tau: temperature of :meth:`rsample` (a float, or one per instance: a tensor
            broadcastable to ``logits`` with size 1 along the event dims).
        validate_args: as for every torch distribution.
        **options: the structure's options (``k``, ``root``, ``lengths``).

    ``sample`` is exact for this law; ``rsample`` is the stochastic softmax trick
    (marginals of ``(θ + G) / τ``) where marginals are tractable; ``log_prob``
    exists for ``categorical`` (the softmax) and ``k_subset`` (the probability of
    the first k items of a Plackett-Luce ranking, ``k <= 10``) only. As for
    :class:`KSubset`, ``sample`` and ``log_prob`` of a ``k_subset`` raise a
    ``ValueError`` where the ``-inf`` logits leave fewer than ``k`` items.
    """

    def __init__(
        self,
        structure: str | Structure,
        logits: Tensor,
        tau: float | Tensor = 1.0,
        validate_args: bool | None = None,
        **options: Any,
    ) -> None:
        self._setup(structure, logits, tau, validate_args, **options)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        """Whether the structure has marginals for the relaxed sample."""
        return self.structure.tractable

    # The Gibbs laws' names, asked of this one: say why not (was an AttributeError).
    @property
    def log_partition(self) -> Tensor:
        """Not defined: this law is not ``∝ exp(<θ, x>)`` (the Gibbs laws are)."""
        raise NotImplementedError(
            "PerturbAndMAP has no log-partition: its law is not ∝ exp(<θ, x>); the Gibbs "
            "laws (KSubset, SpanningTree, Arborescence) have one"
        )

    @property
    def marginals(self) -> Tensor:
        """Not in closed form (as :attr:`mean`): estimate them from ``sample()``."""
        return self.mean

    def _check_room(self) -> None:
        """Raise, as :class:`KSubset` does, where ``-inf`` logits leave fewer than ``k`` items.

        ``MAP(θ + G)`` would then take forbidden items: a value whose probability is 0.

        Raises:
            ValueError: KSubset's "the -inf (forbidden) entries leave no k_subset ...".
        """
        if self.structure.name != "k_subset" or not self.logits.numel():
            return
        if not validation_enabled():  # a value check: off, or torch.compile is tracing
            return
        short = torch.isfinite(self.logits.detach()).sum(-1) < self.options["k"]
        # log of "some k-subset avoids every -inf item": -inf exactly where the
        # log-partition of KSubset is, so the structure's own check gives its message.
        self.structure._checked(torch.where(short, -math.inf, 0.0))

    def _expanded(self, sample_shape: Sequence[int]) -> Tensor:
        """θ expanded to ``[*sample_shape, ..., *event]`` (grid paths take no Gumbel noise)."""
        if self.structure.name == "grid_path":
            raise NotImplementedError(
                "perturb-and-MAP grid_path: its scores are non-negative costs, which additive "
                "Gumbel noise does not keep; perturb the costs and call structure('grid_path').map"
            )
        return self.logits.expand(torch.Size(sample_shape) + self.logits.shape)

    def _draw(self, sample_shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        """``MAP(θ + G)``, ``[*sample_shape, ..., *event]`` 0/1."""
        self._check_room()
        wide = self.structure.perturb(self._expanded(sample_shape), generator=generator, wide=True)
        return self.structure.map(wide, **self.options).to(self.logits.dtype)

    def rsample(
        self,
        sample_shape: Sequence[int] = torch.Size(),
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The SST relaxation: marginals of ``(θ + G) / τ`` (``→ MAP(θ + G)`` as ``τ → 0``).

        Raises:
            NotImplementedError: for structures without marginals, with the reason.
        """
        if not self.structure.tractable:
            raise NotImplementedError(
                f"perturb-and-MAP {self.structure.name}: no relaxed sample, because "
                f"{self.structure.intractable}"
            )
        theta = self._expanded(sample_size(sample_shape))
        noisy = self.structure.perturb(theta, generator=generator, **self.options)
        return self.structure.relax(noisy, tau=self.tau, **self.options)

    def log_prob(self, value: Tensor) -> Tensor:
        """``log P(MAP(θ + G) = value)`` for ``categorical`` and ``k_subset`` (``k <= 10``).

        ``-inf`` where ``value`` is not a structure of the support (not one-hot,
        not exactly ``k`` ones, not 0/1) or uses a forbidden item.

        Raises:
            TypeError: ``value`` is not a tensor.
            ValueError: ``value`` does not end in the event shape, (with
                ``validate_args``) has an entry that is not 0/1, or the ``-inf``
                logits leave fewer than ``k`` items.
            NotImplementedError: for other structures (no closed form), or a larger ``k``.
        """
        self._check_value(value)
        if not value.is_floating_point():  # 0/1 as bool or int, as the Gibbs laws take it
            value = value.to(self.logits.dtype)
        name = self.structure.name
        if name == "categorical":  # Gumbel-max: exactly the softmax
            log_p = dot(torch.log_softmax(self.logits, -1), value, 1)
        elif name == "k_subset" and self.options["k"] <= MAX_SET_K:
            self._check_room()
            log_p = plackett_luce_set_log_prob(self.logits, value, self.options["k"])
        elif name == "k_subset":
            raise NotImplementedError(
                f"perturb-and-MAP k_subset: the set probability sums k! Plackett-Luce orders "
                f"(a DP over 2^k subsets), computed for k <= {MAX_SET_K} only"
            )
        else:
            raise NotImplementedError(
                f"perturb-and-MAP {name}: the probability that a structure is the MAP of θ + G "
                "has no closed form; the Gibbs law (SpanningTree, Arborescence, KSubset) has an "
                "exact log_prob"
            )
        # Both formulas read only where value is nonzero (the set probability its
        # top k entries): off the support their numbers mean nothing, so mask them.
        inside = self.structure.contains(self.logits, value, **self.options)
        return torch.where(inside, log_p, torch.full_like(log_p, -torch.inf))
