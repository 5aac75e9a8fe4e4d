"""The common base of every latent layer: forward, ``attach`` and hard samples."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import structgrad.solvers as solvers
from structgrad.relaxations import independent_edges, sample_gumbel

__all__ = ["LatentLayer", "map_sample"]


def map_sample(
    structure: str,
    logits: Tensor,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Tensor:
    """Perturb-and-MAP sample ``MAP(θ + G)`` (or the plain MAP), without gradient.

    Args:
        structure: ``spanning_tree``, ``k_subset`` (option ``k``), ``categorical``,
            ``arborescence`` (option ``root``), ``matching``, ``binary_tree``
            (the sample is the ``[*batch, n, n]`` adjacency) or ``edges``
            (options ``symmetric``, ``categorical``); the trees take ``lengths``.
        logits: the structure's scores ``[*batch, *event]``.
        noise: add standard Gumbel noise (``False``: the MAP of ``logits``).
        generator: optional ``torch.Generator`` for the noise.
        **options: the structure options above.

    Returns:
        A 0/1 sample shaped like ``logits`` (``binary_tree``: ``[*batch, n, n]``)
        in their dtype (no gradient).
    """
    with torch.no_grad():
        if structure == "edges":
            return _edges_map(logits, noise=noise, generator=generator, **options)
        u = logits.detach()
        if noise:
            u = u + sample_gumbel(u.shape, dtype=u.dtype, device=u.device, generator=generator)
        if structure == "categorical":
            return F.one_hot(u.argmax(-1), u.shape[-1]).to(u.dtype)
        if structure == "k_subset":
            return solvers.top_k(u, int(options["k"]))
        lengths = options.get("lengths")
        if structure == "spanning_tree":
            return solvers.max_spanning_tree(u, lengths=lengths)
        if structure == "arborescence":
            return solvers.max_arborescence(u, root=int(options.get("root", 0)), lengths=lengths)
        if structure == "matching":
            return solvers.linear_assignment(u)
        if structure == "binary_tree":
            return solvers.binary_tree(u, lengths=lengths)
    raise ValueError(f"map_sample: unknown structure {structure!r}")


def _edges_map(
    logits: Tensor,
    *,
    noise: bool,
    generator: torch.Generator | None,
    symmetric: bool = False,
    categorical: bool = False,
    **_: Any,
) -> Tensor:
    if noise:
        # The forward value of the straight-through sample is the one-hot argmax.
        return independent_edges(
            logits.detach(),
            1.0,
            symmetric=symmetric,
            categorical=categorical,
            hard=True,
            generator=generator,
        )
    x = logits.detach()
    if symmetric:
        x = 0.5 * (x + (x.transpose(-2, -3) if categorical else x.transpose(-1, -2)))
    n = x.shape[-2] if categorical else x.shape[-1]
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    if categorical:
        return F.one_hot(x.argmax(-1), x.shape[-1]).to(x.dtype) * off.unsqueeze(-1)
    return (x > 0).to(x.dtype) * off


class LatentLayer(nn.Module):
    """A discrete latent variable with a gradient estimator, built by :func:`latent`.

    ``z = layer(logits)`` draws a sample; ``layer.attach(loss)`` returns the loss
    to backpropagate: ``loss`` itself for pathwise methods (the gradient flows
    through ``z``), ``loss`` plus a zero-valued surrogate whose gradient is the
    score-function estimate otherwise.

    Attributes:
        structure: the structure name.
        method: the method name.
        pathwise: whether the gradient flows through the sample.
        utilities: the perturbed utilities ``U = θ + G`` of the last forward
            pass (not divided by τ; with gradient to the logits) for the SST
            methods (``sst``, ``st-sst``), else ``None``.
        options: the structure options (``k``, ``root``, ``symmetric``,
            ``categorical``) used by :meth:`sample_hard`.
    """

    pathwise: bool = True

    def __init__(self, structure: str, method: str, **options: Any) -> None:
        super().__init__()
        self.structure = structure
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
        return f"structure={self.structure!r}, method={self.method!r}{opts}"
