"""The latent layer of the pseudo-structure ``edges``: independent edges."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from structgrad.distributions import LatentLayer
from structgrad.distributions.checks import check_flag, check_tau
from structgrad.relaxations import independent_edges

from ._structure import EDGES, IndependentEdges

__all__ = ["IndepEdgesLayer"]


class IndepEdgesLayer(LatentLayer):
    """Independent edges: one binary concrete (or ``C``-way Gumbel-softmax) per edge.

    The NRI / SST baseline latent graph. ``logits`` ``[*batch, n, n]`` are the
    log-odds of each directed edge; with ``categorical=True`` they are
    ``[*batch, n, n, C]`` edge-type logits (NRI's 2-channel variant, channel 0
    "no edge"). ``symmetric=True`` averages ``(i, j)`` and ``(j, i)`` and shares
    the noise, so the sample is an undirected graph.

    Args:
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

    takes_lengths = False

    def __init__(
        self,
        *,
        tau: float = 1.0,
        symmetric: bool = False,
        categorical: bool = False,
        straight_through: bool = False,
    ) -> None:
        flags = {"symmetric": symmetric, "categorical": categorical}
        super().__init__(None, {k: check_flag(v, k) for k, v in flags.items()})
        self.edges: IndependentEdges = EDGES
        self.tau = check_tau(tau)
        self.straight_through = check_flag(straight_through, "straight_through")

    def _sample(self, logits: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """Sample shaped like ``logits`` with a zero diagonal."""
        return independent_edges(
            logits,
            self.tau,
            hard=self.straight_through,
            generator=generator,
            **self.structure_options,
        )

    def _sample_hard(
        self, logits: Tensor, lengths: Any, generator: torch.Generator | None, noise: bool
    ) -> Tensor:
        """The straight-through sample's forward value (or the MAP), zero diagonal."""
        with torch.no_grad():
            return self.edges.map_sample(
                logits, noise=noise, generator=generator, **self.structure_options
            )

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.structure_options.items())
        return f"tau={self.tau}, straight_through={self.straight_through}{opts}"
