"""Gumbel noise and perturb-and-MAP samples of a structure (a mixin of ``Structure``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from ._numerics import widened, without_offset
from ._utils import gumbel_like
from .checks import check_options, check_tensor, lengths_mask

__all__ = ["Perturbing"]


class Perturbing:
    """``θ + G`` and ``MAP(θ + G)`` for a structure with ``map``, ``symmetric`` and ``minimize``."""

    name: ClassVar[str]
    event_dim: ClassVar[int]
    symmetric: ClassVar[bool] = False
    minimize: ClassVar[bool] = False

    def map(self, scores: Tensor, **options: Any) -> Tensor:
        """The MAP structure (``Structure.map``)."""
        raise NotImplementedError

    def offset_read(self, scores: Tensor, **options: Any) -> Tensor | None:
        """The entries that decide :func:`without_offset`'s offset: those the law reads.

        Graphs: off the diagonal (a tree's upper triangle), not into a ``root``,
        between vertices inside ``lengths``. Unread entries (padding set to 0)
        would keep a large common offset from being removed.

        Args:
            scores: ``[..., *event]`` scores.
            **options: the structure's checked options (``root``, ``lengths``).
        """
        read = None
        if self.event_dim == 2 and scores.shape[-1] == scores.shape[-2]:
            n = scores.shape[-1]
            read = ~torch.eye(n, dtype=torch.bool, device=scores.device)
            read = read.triu(1) if self.symmetric else read
            if options.get("root") is not None:
                read[:, options["root"]] = False
        lengths = options.get("lengths")
        if lengths is not None:
            inside = lengths_mask(lengths, scores.shape[: scores.ndim - self.event_dim],
                                  scores.shape[-1], scores.device)  # fmt: skip
            if self.event_dim == 2:
                inside = inside[..., :, None] & inside[..., None, :]
            read = inside if read is None else read & inside
        return read

    def gumbel(self, shape_like: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Standard Gumbel noise like ``shape_like`` (symmetric for undirected structures)."""
        return gumbel_like(shape_like, generator=generator, symmetric=self.symmetric)

    def perturb(
        self,
        scores: Tensor,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        wide: bool = False,
        **options: Any,
    ) -> Tensor:
        """Perturbed scores ``θ + G`` with the structure's noise (:meth:`gumbel`).

        A common offset is removed first where that is exact (:func:`without_offset`).

        Args:
            scores: ``[..., *event]`` scores θ.
            noise: the noise ``G``, shaped like ``scores`` (default: a fresh
                :meth:`gumbel` draw), e.g. to reuse one draw. The result
                takes the scores' dtype and device (float64 with ``wide``).
            generator: optional ``torch.Generator`` for the noise.
            wide: sum in float64 (:func:`widened`), for exact draws: in float32 at
                ``|θ| = 1e8`` the noise rounds away and ties go to the lowest index.
            **options: the structure's options (``root``, ``lengths``): the offset
                is read from the entries they leave (:meth:`offset_read`).

        Raises:
            TypeError: ``noise`` is not a float32 / float64 tensor.
            ValueError: ``noise`` is not shaped like ``scores``.
        """
        check_options(f"{self.name}.perturb", options, self.option_names)  # type: ignore[attr-defined]
        theta = without_offset(scores, self.event_dim, self.offset_read(scores, **options))
        if noise is None:
            noise = self.gumbel(scores, generator=generator)
        elif check_tensor(noise, "noise").shape != scores.shape:
            shapes = f"{tuple(scores.shape)}, got {tuple(noise.shape)}"
            raise ValueError(f"perturb: noise must be shaped like scores {shapes}")
        if wide:
            theta, noise = widened(theta), widened(noise)
        # θ + G follows θ's dtype and device (float64 noise would promote float32 θ).
        return theta + noise.to(theta)

    def map_sample(
        self,
        scores: Tensor,
        *,
        noise: bool = True,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Perturb-and-MAP sample ``MAP(θ + G)`` (or the plain MAP), without gradient.

        Args:
            scores: ``[*batch, *event]`` scores θ.
            noise: add this structure's standard Gumbel noise (``False``: the MAP).
            generator: optional ``torch.Generator`` for the noise.
            **options: the structure's options (``k``, ``root``, ``lengths``, ...).

        Raises:
            ValueError: for bad scores or options, or noise on a structure whose
                MAP minimises non-negative costs (Gumbel noise does not keep them so).
        """
        with torch.no_grad():
            u = scores.detach()
            if noise:
                if self.minimize:
                    raise ValueError(
                        f"{self.name} minimises non-negative costs, which Gumbel noise does "
                        "not keep; pass noise=False, or perturb with structgrad.estimators "
                        f"(e.g. imle({self.name!r}))"
                    )
                u = self.perturb(u, generator=generator, wide=True)
            return self.map(u, **options).to(scores.dtype)
