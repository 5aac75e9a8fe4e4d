"""Where a structure is resolved, and the models-level pseudo-structure ``"edges"``.

Every structure is a :class:`structgrad.distributions.Structure`, resolved once
at the API edge (:func:`~structgrad.models.latent`,
:func:`~structgrad.models.map_sample`, :class:`~structgrad.models.LatentLayer`)
by :func:`resolve`; the rest of the package reads its attributes. The one
exception is :data:`EDGES`, a bag of independent binary edges: it has no
combinatorial constraint, hence no Structure, and this module is the only
place that knows its name.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor

from structgrad.distributions import Structure, structure
from structgrad.distributions.checks import OptionError
from structgrad.relaxations import independent_edges

__all__ = ["EDGES", "IndependentEdges", "LatentStructure", "resolve"]


class IndependentEdges:
    """The pseudo-structure ``"edges"``: every directed edge is an independent binary variable.

    Its logits are ``[*batch, n, n]`` log-odds, or ``[*batch, n, n, C]``
    edge-type logits with ``categorical=True``; ``symmetric=True`` averages
    ``(i, j)`` and ``(j, i)`` and shares the noise. Its only method is
    ``"indep"`` (a binary concrete per edge, NRI's latent graph).
    """

    name: ClassVar[str] = "edges"

    def __repr__(self) -> str:
        return repr(self.name)

    def map_sample(
        self,
        logits: Tensor,
        *,
        noise: bool,
        generator: torch.Generator | None,
        symmetric: bool = False,
        categorical: bool = False,
        **unknown: Any,
    ) -> Tensor:
        """The hard sample (``noise``) or the MAP of independent edges, zero diagonal.

        Args:
            logits: ``[*batch, n, n]`` log-odds or ``[*batch, n, n, C]`` edge-type logits.
            noise: the straight-through sample's forward value instead of the MAP.
            generator: optional ``torch.Generator`` for the noise.
            symmetric: average ``(i, j)`` and ``(j, i)`` (and share their noise).
            categorical: edge-type channels in the last dim.
            **unknown: any other option: an error, not ignored.

        Raises:
            OptionError: (a ``ValueError``) for any other option (nothing is ignored).
        """
        if unknown:
            raise OptionError(
                f"edges: unknown options {sorted(unknown)}; accepted: categorical, symmetric"
            )
        x = logits.detach()
        if noise:
            # The forward value of the straight-through sample is the one-hot argmax.
            return independent_edges(
                x, 1.0, symmetric=symmetric, categorical=categorical, hard=True, generator=generator
            )
        if symmetric:
            x = 0.5 * (x + (x.transpose(-2, -3) if categorical else x.transpose(-1, -2)))
        n = x.shape[-2] if categorical else x.shape[-1]
        off = ~torch.eye(n, dtype=torch.bool, device=x.device)
        if categorical:
            return F.one_hot(x.argmax(-1), x.shape[-1]).to(x.dtype) * off.unsqueeze(-1)
        return (x > 0).to(x.dtype) * off


#: The pseudo-structure ``"edges"`` (see :class:`IndependentEdges`).
EDGES = IndependentEdges()

#: What a latent layer's ``structure`` is: a Structure, or :data:`EDGES`.
LatentStructure: TypeAlias = Structure | IndependentEdges


def resolve(name: str | LatentStructure) -> LatentStructure:
    """The Structure called ``name`` (or :data:`EDGES`); instances are returned as they are.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(name, (Structure, IndependentEdges)):
        return name
    if name == EDGES.name:
        return EDGES
    try:
        return structure(name)
    except ValueError as err:
        raise ValueError(f"{err}, {EDGES.name}") from None
