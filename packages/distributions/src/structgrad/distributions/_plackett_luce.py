"""The Plackett-Luce law over rankings, sampled by the Gumbel top-n trick.

References:
    Plackett, "The Analysis of Permutations", J. R. Stat. Soc. C, 1975;
    Luce, "Individual Choice Behavior", 1959.
    Kool, van Hoof and Welling, "Stochastic Beams and Where to Find Them: The
    Gumbel-Top-k Trick for Sampling Sequences Without Replacement", ICML 2019,
    https://arxiv.org/abs/1903.06059.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import lazy_property

from ._numerics import widened, without_offset
from ._plackett_luce_exact import MAX_ITEMS, rank_marginals_and_entropy
from ._sampled import Sampled
from ._utils import gumbel_like
from .checks import check_scores

__all__ = ["PlackettLuce"]

#: Below the smallest finite logit by this many nats, an item weighs exp(-1000)
#: relative to any other: nothing in float64.
_FAR = 1000.0


class _Rankings(constraints.Constraint):
    """Index tensors ``[..., n]`` holding each of ``0 .. n-1`` once."""

    is_discrete = True
    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        n = value.shape[-1]
        ok = value.sort(-1).values == torch.arange(n, device=value.device)
        return ok.all(-1)


class PlackettLuce(Sampled):
    """Rankings of ``n`` items: the first is drawn ``∝ exp(θ)``, then the next among the rest.

    A sample is an index tensor ``[..., n]`` (``long``), the first chosen first:
    ``argsort(θ + G, descending)`` with Gumbel noise ``G`` (exact). Items with
    ``-inf`` logits come last, in increasing index order (as the sampler puts
    them); any other placement has probability 0.

    Args:
        logits: ``[..., n]`` log-weights θ.
        validate_args: as for every torch distribution.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {"logits": constraints.real}
    support = _Rankings()
    has_rsample = False

    def __init__(self, logits: Tensor, validate_args: bool | None = None) -> None:
        check_scores(logits, "logits", 1)
        if logits.shape[-1] < 1:
            raise ValueError("logits: need n >= 1 items")
        self.logits = logits
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> PlackettLuce:
        new = self._get_checked_instance(PlackettLuce, _instance)
        shape = torch.Size(batch_shape)
        new.logits = self.logits.expand(shape + self.event_shape)
        Distribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def marginals(self) -> Tensor:
        """``[..., n, n]`` ``P(rank t holds item i)`` at ``[..., t, i]``; exact, differentiable.

        Raises:
            ValueError: more than :data:`MAX_ITEMS` items (a sum over ``2^n`` subsets).
        """
        return self._exact[0]

    def entropy(self) -> Tensor:
        """``[...]`` ``H = −E[log p(π)]``; exact, differentiable.

        Raises:
            ValueError: more than :data:`MAX_ITEMS` items (a sum over ``2^n`` subsets).
        """
        return self._exact[1]

    @lazy_property
    def _exact(self) -> tuple[Tensor, Tensor]:
        n = self.logits.shape[-1]
        if n > MAX_ITEMS:
            raise ValueError(
                f"PlackettLuce: exact marginals and entropy sum over the 2^n item subsets, so "
                f"n <= {MAX_ITEMS} (got {n}); estimate them from sample() "
                "(the entropy as -log_prob(sample((S,))).mean(0))"
            )
        return rank_marginals_and_entropy(self._centred)

    @property
    def _centred(self) -> Tensor:
        """The logits less a common offset where removing it is exact (the law ignores it).

        Tied logits at 1e16 gave log-probabilities summing to 6 over 3! rankings:
        the suffix sums' log-sum-exp lost the O(1) terms beside the offset.
        """
        return without_offset(self.logits, 1)

    @property
    def mode(self) -> Tensor:
        """The most likely ranking: items by decreasing logit (ties by index)."""
        return self.logits.detach().argsort(dim=-1, descending=True, stable=True)

    def _draw(self, sample_shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        """Rankings ``[*sample_shape, ..., n]``: argsort of ``θ + G``, descending."""
        theta = self._centred.expand(self._extended_shape(sample_shape))
        keys = widened(theta) + widened(gumbel_like(theta, generator=generator))
        # -inf keys tie: the stable sort keeps them in index order, at the end.
        return keys.argsort(dim=-1, descending=True, stable=True)

    def log_prob(self, value: Tensor) -> Tensor:
        """``Σ_t θ_{π_t} − log Σ_{s ≥ t} exp(θ_{π_s})`` of rankings ``value`` ``[..., n]``.

        Raises:
            TypeError: ``value`` is not a tensor.
            ValueError: ``value`` does not end in the event shape ``(n,)``, or (with
                ``validate_args``) holds something other than rankings.
        """
        self._check_event(value)
        ranking = self.support.check(value)  # [...]
        if self._validate_args and value.numel() and not bool(ranking.all()):
            raise ValueError(
                f"value must hold rankings (permutations of range({self.logits.shape[-1]})) "
                f"in its last dim, got {value.tolist() if value.numel() <= 20 else 'others'}"
            )
        # Without validation, what is not a ranking gets -inf, as off the Gibbs laws'
        # support (it got a finite log-probability, or gather's index error).
        identity = torch.arange(value.shape[-1], device=value.device, dtype=value.dtype)
        value = torch.where(ranking[..., None], value, identity)
        theta, index = torch.broadcast_tensors(self._centred, value)
        # In float64: float32 logits at 1e6 lost 2.5 % of the mass (the suffix sums cancel).
        picked = widened(theta).gather(-1, index.long())  # [..., n]: θ in ranking order
        finite = torch.isfinite(picked)
        low = torch.where(finite, picked, torch.inf).detach().amin(-1, keepdim=True)
        # -inf items are replaced by a finite stand-in far below every finite item:
        # the suffix sums do not change and their gradient is never NaN.
        fill = torch.where(torch.isfinite(low), low - _FAR, 0.0)
        safe = torch.where(finite, picked, fill)
        suffix = torch.logcumsumexp(safe.flip(-1), -1).flip(-1)  # log Σ_{s>=t} exp θ_{π_s}
        total = torch.where(finite, safe - suffix, 0.0).sum(-1)
        after = ~finite[..., :-1] & finite[..., 1:]  # a finite item after a -inf one
        unordered = ~finite[..., :-1] & ~finite[..., 1:] & (index[..., 1:] < index[..., :-1])
        impossible = (after | unordered).any(-1) | ~ranking
        return torch.where(impossible, -torch.inf, total).to(self.logits.dtype)
