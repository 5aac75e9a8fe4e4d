"""``map_sample``: the perturb-and-MAP sample of any structure, functional form."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._structure import IndependentEdges, LatentStructure, resolve

__all__ = ["map_sample"]


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
    if isinstance(s, IndependentEdges):
        with torch.no_grad():
            return s.map_sample(logits, noise=noise, generator=generator, **options)
    return s.map_sample(logits, noise=noise, generator=generator, **options)
