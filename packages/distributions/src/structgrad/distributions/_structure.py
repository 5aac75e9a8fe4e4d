"""The ``Structure`` base class: what every structure knows about itself.

A structure owns the event shape of its scores and their checks, its options,
Gumbel noise, MAP (through :mod:`structgrad.solvers`), exhaustive enumeration
for tiny sizes and, where tractable, the exponential family
``p(x) ∝ exp(<θ, x>)``: log-partition, marginals and exact samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from ._utils import check_scores, dot, gradient, gumbel_like, lengths_mask

__all__ = ["Structure"]


class Structure:
    """One combinatorial structure; subclasses set the class attributes and hooks.

    Attributes:
        name: the structure's name (``"spanning_tree"``, ...).
        event_dim: number of trailing dimensions of its scores.
        option_names: the options it accepts.
        required: the options without a default.
        symmetric: undirected (scores read from the strict upper triangle).
        min_size: the smallest ``n``.
        intractable: why it has no tractable exponential family (``None`` if it has one).
    """

    name: ClassVar[str]
    event_dim: ClassVar[int]
    option_names: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    symmetric: ClassVar[bool] = False
    square: ClassVar[bool] = False
    min_size: ClassVar[int] = 1
    intractable: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"structure({self.name!r})"

    @property
    def tractable(self) -> bool:
        """Whether log-partition, marginals and exact Gibbs samples are available."""
        return self.intractable is None

    # -- checks ---------------------------------------------------------------

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Complete ``options`` with defaults; unknown or missing ones raise ``ValueError``."""
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            accepted = ", ".join(self.option_names) or "none"
            raise ValueError(f"{self.name}: unknown options {unknown}; accepted: {accepted}")
        missing = [o for o in self.required if o not in options]
        if missing:
            raise ValueError(f"{self.name}: missing required options {missing}")
        return {**self.defaults, **options}

    def check(self, scores: Tensor, **options: Any) -> dict[str, Any]:
        """Validate ``scores`` and ``options``; return the completed options.

        Raises:
            ValueError: on a non-floating tensor, NaN or ``+inf``, a wrong rank, a
                non-square graph, ``n`` below :attr:`min_size`, or a bad option.
        """
        opts = self.options(options)
        check_scores(scores, "scores", self.event_dim, square=self.square)
        n = scores.shape[-1]
        if n < self.min_size:
            raise ValueError(f"{self.name}: scores need n >= {self.min_size}, got n = {n}")
        self._check_options(scores, opts)
        return opts

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        """Hook: validate the options against ``scores`` (raise ``ValueError``)."""

    def lengths_mask(self, scores: Tensor, lengths: Any, *, lo: int = 1) -> Tensor | None:
        """``[..., n]`` boolean mask of the vertices inside each graph (``None``: all).

        Args:
            scores: ``[..., n, n]`` (or ``[..., n]``) scores; the batch comes from them.
            lengths: ``None`` or integers broadcastable to the batch, in ``[lo, n]``.
            lo: the smallest accepted length.

        Raises:
            ValueError: on non-integer lengths, a wrong shape, or a length out of range.
        """
        if lengths is None:
            return None
        batch = tuple(scores.shape[: scores.dim() - self.event_dim])
        return lengths_mask(lengths, batch, scores.shape[-1], scores.device, lo)

    # -- noise, MAP, enumeration ------------------------------------------------

    def gumbel(self, shape_like: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Standard Gumbel noise like ``shape_like`` (symmetric for undirected structures).

        Args:
            shape_like: a tensor whose shape, dtype and device the noise takes.
            generator: optional ``torch.Generator``.
        """
        return gumbel_like(shape_like, generator=generator, symmetric=self.symmetric)

    def map(self, scores: Tensor, **options: Any) -> Tensor:
        """The highest-scoring structure, as a 0/1 tensor in ``scores``' dtype and device."""
        return self._map(scores, **self.check(scores, **options))

    def _map(self, scores: Tensor, **opts: Any) -> Tensor:
        raise NotImplementedError

    def enumerate(self, n: int, **options: Any) -> Tensor:
        """Every structure of size ``n`` as a float64 stack ``[N, *event]`` (tiny ``n`` only)."""
        raise NotImplementedError(f"{self.name}: structgrad.solvers has no enumerator for it")

    # -- the exponential family ------------------------------------------------

    def solution_shape(self, event_shape: torch.Size) -> torch.Size:
        """The event shape of a structure (the MAP's) for scores of event shape ``event_shape``."""
        return event_shape

    def _require_tractable(self) -> None:
        if self.intractable is not None:
            raise NotImplementedError(self.intractable)

    def log_partition(self, scores: Tensor, **options: Any) -> Tensor:
        """``log Σ_x exp(<θ, x>)`` over the structures, ``[...]``.

        Raises:
            NotImplementedError: for structures without a tractable law.
            ValueError: on bad input, or ``-inf`` scores leaving no structure.
        """
        self._require_tractable()
        opts = self.check(scores, **options)
        return self._checked(self._log_partition(scores, **opts))

    def _checked(self, log_z: Tensor) -> Tensor:
        if bool(torch.isneginf(log_z).any()):
            raise ValueError(
                f"scores: the -inf (forbidden) entries leave no {self.name} with positive "
                "probability"
            )
        return log_z

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        raise NotImplementedError

    def marginals(self, scores: Tensor, **options: Any) -> Tensor:
        """``μ = E[x] = ∂ log Z / ∂ θ``, differentiable when ``scores`` requires grad.

        Returns:
            A tensor like ``scores`` (symmetric for undirected structures).
        """
        self._require_tractable()
        opts = self.check(scores, **options)
        self._checked(self._log_partition(scores.detach(), **opts))
        grad = gradient(lambda s: self._log_partition(s, **opts), scores)
        return grad + grad.transpose(-1, -2) if self.symmetric else grad

    def score(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """``<θ, x>`` over the entries the structure reads (``-inf · 0 = 0``), ``[...]``."""
        return dot(scores, x, self.event_dim)

    def contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """``[*sample, ...]`` bool: whether each ``x`` is a structure of the support.

        The base class checks 0/1 entries only; subclasses check the structure.
        """
        dims = tuple(range(-self.event_dim, 0))
        return ((x == 0) | (x == 1)).all(dim=dims)

    def sample(
        self,
        scores: Tensor,
        sample_shape: Sequence[int] = (),
        *,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Exact samples of the Gibbs law ``p(x) ∝ exp(<θ, x>)``, ``[*sample_shape, ..., *event]``.

        Raises:
            NotImplementedError: for structures without a tractable law.
        """
        self._require_tractable()
        opts = self.check(scores, **options)
        self._checked(self._log_partition(scores.detach(), **opts))
        shape = torch.Size(sample_shape)
        return self._sample(scores.detach(), shape, generator, **opts)

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        raise NotImplementedError
