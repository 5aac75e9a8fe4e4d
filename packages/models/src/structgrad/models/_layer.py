"""The common base of every latent layer: forward, ``attach`` and hard samples."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._structure import IndependentEdges, LatentStructure, resolve

__all__ = ["LatentLayer", "map_sample"]


def map_sample(
    structure: str | LatentStructure,
    logits: Tensor,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Tensor:
    """Perturb-and-MAP sample ``MAP(θ + G)`` (or the plain MAP), without gradient.

    Args:
        structure: a name of ``structgrad.distributions.STRUCTURES`` or its
            :class:`~structgrad.distributions.Structure` (``binary_tree``'s sample
            is the ``[*batch, n, n]`` adjacency; ``grid_path`` minimises costs and
            takes ``noise=False`` only), or ``edges`` (options ``symmetric``,
            ``categorical``).
        logits: the structure's scores ``[*batch, *event]``.
        noise: add the structure's standard Gumbel noise (symmetric for
            undirected structures; ``False``: the MAP of ``logits``).
        generator: optional ``torch.Generator`` for the noise.
        **options: the structure's options (``k``, ``root``, ``lengths``, ...).

    Returns:
        A 0/1 sample of the structure's solution shape (``logits``' shape but
        for ``binary_tree``) in their dtype (no gradient).

    Raises:
        ValueError: for an unknown structure, bad scores or options (checked by
            the Structure), or noise on a structure whose MAP minimises costs.
    """
    s = resolve(structure)
    with torch.no_grad():
        if isinstance(s, IndependentEdges):
            return s.map_sample(logits, noise=noise, generator=generator, **options)
        u = logits.detach()
        if noise:
            if s.minimize:
                raise ValueError(
                    f"map_sample: {s.name} minimises non-negative costs, which Gumbel noise "
                    "does not keep; pass noise=False, or perturb with structgrad.estimators "
                    f"(e.g. imle({s.name!r}))"
                )
            u = u + s.gumbel(u, generator=generator)
        return s.map(u, **options)


class LatentLayer(nn.Module):
    """A discrete latent variable with a gradient estimator, built by :func:`latent`.

    ``z = layer(logits)`` draws a sample; ``layer.attach(loss)`` returns the loss
    to backpropagate: ``loss`` itself for pathwise methods (the gradient flows
    through ``z``), ``loss`` plus a zero-valued surrogate whose gradient is the
    score-function estimate otherwise.

    Attributes:
        structure: the :class:`~structgrad.distributions.Structure` (or the
            pseudo-structure ``edges``), resolved from the name given.
        method: the method name.
        pathwise: whether the gradient flows through the sample.
        utilities: the perturbed utilities ``U = θ + G`` of the last forward
            pass (not divided by τ; with gradient to the logits) for the SST
            methods (``sst``, ``st-sst``), else ``None``.
        options: the structure options (``k``, ``root``, ``symmetric``,
            ``categorical``) used by :meth:`sample_hard`.
    """

    pathwise: bool = True

    def __init__(self, structure: str | LatentStructure, method: str, **options: Any) -> None:
        super().__init__()
        self.structure: LatentStructure = resolve(structure)
        self.method = method
        self.options = options
        self.utilities: Tensor | None = None

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw a sample (see the subclasses)."""
        raise NotImplementedError

    def attach(self, loss: Tensor, *, baseline: Tensor | None = None) -> Tensor:
        """The loss to backpropagate; the identity for pathwise methods.

        Args:
            loss: ``[*batch]`` per-sample loss computed from the last sample.
            baseline: a learned baseline ``[*batch]`` (score-function methods
                that take one); pathwise methods refuse it.

        Returns:
            ``loss``, unchanged.

        Raises:
            ValueError: if a baseline is passed to a pathwise method.
        """
        if baseline is not None:
            raise ValueError(
                f"method {self.method!r} is pathwise and takes no baseline; baselines are for "
                "score-function methods (e.g. 'nvil')"
            )
        return loss

    def sample_hard(
        self, logits: Tensor, *, generator: torch.Generator | None = None, noise: bool = True
    ) -> Tensor:
        """A hard sample ``MAP(θ + G)`` (or the MAP with ``noise=False``), no gradient.

        This is what the reference evaluates with (Kruskal / top-k / argmax of
        the Gumbel-perturbed logits at τ = 1). For arborescences it is the
        maximum arborescence of ``θ + G`` (perturb-and-MAP), which is not the
        recursive-Gumbel distribution the score-function methods sample.

        Args:
            logits: ``[*batch, *event]`` as for :meth:`forward`.
            generator: optional ``torch.Generator``.
            noise: perturb with standard Gumbel noise.

        Returns:
            ``[*batch, *event]`` 0/1 structure in the logits' dtype.
        """
        return map_sample(self.structure, logits, noise=noise, generator=generator, **self.options)

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"structure={self.structure.name!r}, method={self.method!r}{opts}"
