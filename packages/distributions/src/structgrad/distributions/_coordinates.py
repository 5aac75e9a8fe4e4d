"""The coordinates a structure reads, and the linear description of its polytope.

:class:`Coordinates` is the part of :class:`~structgrad.distributions.Structure`
that flattens scores to the entries a structure reads and describes
``conv 𝒳`` over them (used by the cvxpylayers relaxation and the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

__all__ = ["Coordinates"]


class Coordinates:
    """Flattening and polytope hooks of a structure (defaults: all event dims, no polytope)."""

    name: ClassVar[str]
    event_dim: ClassVar[int]

    def flatten(self, scores: Tensor) -> Tensor:
        """``[..., d]``: the entries a structure reads, one per coordinate.

        Undirected structures keep the strict upper triangle (row-major ``i < j``);
        the others flatten their event dims.
        """
        return scores.flatten(-self.event_dim) if self.event_dim > 1 else scores

    def unflatten(self, x: Tensor, event_shape: Sequence[int]) -> Tensor:
        """The inverse of :meth:`flatten`: ``[..., d]`` back to ``[..., *event_shape]``."""
        return x.unflatten(-1, tuple(event_shape)) if self.event_dim > 1 else x

    def polytope(self, n: int, **options: Any) -> tuple[np.ndarray, ...]:
        """Linear description of the convex hull of the structures of size ``n``.

        Over the coordinates of :meth:`flatten`: ``conv 𝒳 = {x >= 0 : A_eq x = b_eq,
        A_ub x <= b_ub}``.

        Returns:
            ``(A_eq, b_eq, A_ub, b_ub)`` as float64 numpy arrays.

        Raises:
            NotImplementedError: for a structure without one here.
        """
        raise NotImplementedError(f"{self.name}: no linear description of its polytope here")
