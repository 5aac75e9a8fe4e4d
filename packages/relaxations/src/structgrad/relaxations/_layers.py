"""The relaxations as latent layers: the stochastic softmax trick and Gumbel-softmax.

Both follow :class:`structgrad.distributions.LatentLayer`: ``layer(logits, *,
lengths=None, generator=None)`` draws, ``attach(loss)`` is the identity (they
are pathwise) and ``sample_hard`` is the perturb-and-MAP sample.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from structgrad.distributions import LatentLayer, Structure, structure
from structgrad.distributions.checks import (
    check_flag,
    check_options,
    check_tau,
)

from ._gumbel import gumbel_softmax
from ._options import checks_options
from ._sst import check_required, sst

__all__ = ["GumbelSoftmaxLayer", "SSTLayer"]


class SSTLayer(LatentLayer):
    """Stochastic softmax trick: exact exponential-family marginals of ``(θ + G)/τ``.

    ``z = argmax_{x ∈ conv 𝒳} <U, x> − τ Ω(x)`` with ``U = θ + G`` and Ω the
    exponential-family entropy: spanning trees by the Matrix-Tree theorem
    (clipped to ``max_range``), k-subsets by the DP over elementary symmetric
    polynomials, arborescences by the directed Matrix-Tree theorem, matchings
    by Gumbel-Sinkhorn. With ``straight_through=True`` (method ``"st-sst"``) the
    forward value is the exact MAP of ``U`` and the gradient is the relaxed one.

    Args:
        structure: a relaxable structure (``spanning_tree``, ``k_subset``,
            ``arborescence``, ``matching``; ``categorical`` is Gumbel-softmax).
        tau: temperature τ > 0.
        straight_through: hard forward value, relaxed gradient.
        **options: the structure's ``option_names`` and ``relax_option_names``:
            ``k`` (k-subset), ``root``, ``lengths`` (default for every call),
            ``max_range`` (trees), ``n_iters`` and ``anneal`` (matching).

    References:
        Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
        NeurIPS 2020, https://arxiv.org/abs/2006.08063.
    """

    structure: Structure

    def __init__(
        self,
        structure: str | Structure,
        *,
        tau: float = 1.0,
        straight_through: bool = False,
        **options: Any,
    ) -> None:
        s = structure if isinstance(structure, Structure) else _relaxable(structure)
        accepted = (*s.option_names, *s.relax_option_names)
        check_options(f"sst on {s.name}", options, (*accepted, "tau", "straight_through"))
        check_required(s, options)  # now: no call can give k later
        super().__init__(s, {k: v for k, v in options.items() if k in s.option_names})
        self.tau = check_tau(tau)
        self.straight_through = check_flag(straight_through, "straight_through")
        self.sst_options = s.relax_options(options)  # max_range, n_iters: refused now

    def _sample(self, logits: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """Relaxed (or straight-through) sample shaped like ``logits`` ``[*batch, *event]``."""
        options = dict(self.sst_options)
        if lengths is not None:
            options["lengths"] = lengths
        out = sst(
            self.structure,
            logits,
            self.tau,
            straight_through=self.straight_through,
            generator=generator,
            **options,
        )
        assert isinstance(out, Tensor)
        return out

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.sst_options.items())
        return (
            f"structure={self.structure.name!r}, tau={self.tau}, "
            f"straight_through={self.straight_through}{opts}"
        )


def _relaxable(name: str) -> Structure:
    s = structure(name)
    if not s.relaxable:
        raise ValueError(f"sst: {s.name} has no relaxation ({s.relax_missing})")
    return s


class GumbelSoftmaxLayer(LatentLayer):
    """Gumbel-softmax (concrete) categorical sample; ``hard=True`` is straight-through.

    Args:
        tau: temperature τ > 0.
        hard: one-hot forward value, relaxed gradient (method ``"st"``).

    References:
        Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax",
        ICLR 2017, https://arxiv.org/abs/1611.01144.
        Maddison, Mnih and Teh, "The Concrete Distribution", ICLR 2017,
        https://arxiv.org/abs/1611.00712.
    """

    takes_lengths = False

    @checks_options
    def __init__(self, *, tau: float = 1.0, hard: bool = False) -> None:
        super().__init__(structure("categorical"))
        self.tau = check_tau(tau)
        self.hard = check_flag(hard, "hard")

    def _sample(self, logits: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """Sample ``[*batch, n]`` summing to 1 over the last dim."""
        return gumbel_softmax(logits, self.tau, hard=self.hard, generator=generator)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, hard={self.hard}"
