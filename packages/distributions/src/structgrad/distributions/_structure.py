"""The ``Structure`` base class: what every structure knows about itself.

A structure owns the event shape of its scores and their checks, its options,
Gumbel noise, MAP (through :mod:`structgrad.solvers`), exhaustive enumeration
for tiny sizes and, where tractable, the exponential family
``p(x) ∝ exp(<θ, x>)``: log-partition, marginals and exact samples (its trace
hooks come from ``_trace``, its coordinates and polytope from ``_coordinates``,
its relaxation from ``_relaxing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from structgrad.solvers import InvalidScoresError

from ._coordinates import Coordinates
from ._perturbing import Perturbing
from ._relaxing import Relaxing
from ._sampled import sample_size
from ._trace import Tracing
from ._utils import dot, value_and_gradient
from .checks import (
    OptionError,
    check_generator,
    check_scores,
    lengths_mask,
    validation_enabled,
)

__all__ = ["Structure"]


class Structure(Perturbing, Relaxing, Tracing, Coordinates):
    """One combinatorial structure; subclasses set the class attributes and hooks.

    Attributes:
        name: the structure's name (``"spanning_tree"``, ...).
        event_dim: number of trailing dimensions of its scores.
        option_names: the options it accepts.
        required: the options without a default.
        symmetric: undirected (scores read from the strict upper triangle).
        min_size: the smallest ``n``.
        intractable: why it has no tractable exponential family (``None`` if it has one).
        minimize: its scores are costs and MAP minimises ``<z, c>`` (grid paths).
        nonlinear: why MAP is not ``argmax_z <z, θ>`` over solutions ``z`` shaped
            like ``θ`` (``None``: it is, and perturb-and-MAP estimators apply).
        relax_option_names: the options only :meth:`relax` takes.
        relax_option_checks: a check for each of them that needs no scores
            (see :meth:`relax_options`).
        relax_missing: why it has no regularised-argmax relaxation (``None``: it has one).
        relax_per_entry_tau: whether :meth:`relax` takes a τ per score entry
            (trees divide the scores as they are); the others centre each
            instance first, exact for one τ per instance only.
        map_checks_values: whether its MAP solver rejects NaN / +inf (and the
            structure's value constraints) itself, so callers need not read the values.
        forbids: whether a ``-inf`` score forbids its entry (``False`` where every
            element is used, binary trees, or scores are costs); see
            :meth:`refuse_forbidden`.
        relaxation: what :meth:`relax` computes: ``"marginals"`` (of the
            exponential family), ``"softmax"`` (categorical: its stochastic
            softmax trick is Gumbel-softmax), ``"sinkhorn"`` or ``None``.
        has_trace: whether it has a recursive Gumbel-max trace (``trace_sample``,
            ``trace_steps``, ``trace_used``; see :mod:`._trace`).
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
    minimize: ClassVar[bool] = False
    nonlinear: ClassVar[str | None] = None
    map_checks_values: ClassVar[bool] = True
    forbids: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"structure({self.name!r})"

    @property
    def tractable(self) -> bool:
        """Whether log-partition, marginals and exact Gibbs samples are available."""
        return self.intractable is None

    def ones(self, event_shape: Sequence[int], **options: Any) -> float:
        """Typical count of ones of a solution (>= 1), Sum-of-Gamma noise's ``k`` (Niepert 2021)."""
        return float(max(event_shape[-1] - 1, 1))

    # -- checks ---------------------------------------------------------------

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Complete ``options`` with defaults; unknown (``OptionError``) or missing ones raise."""
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            accepted = ", ".join(self.option_names) or "none"
            raise OptionError(f"{self.name}: unknown options {unknown}; accepted: {accepted}")
        missing = [o for o in self.required if o not in options]
        if missing:
            raise ValueError(f"{self.name}: missing required options {missing}")
        return {**self.defaults, **options}

    def check(self, scores: Tensor, *, argname: str = "scores", **options: Any) -> dict[str, Any]:
        """Validate ``scores`` (named ``argname`` in errors) and ``options``; return the options.

        Raises:
            ValueError: on a non-floating tensor, NaN or ``+inf``, a wrong rank, a
                non-square graph, ``n`` below :attr:`min_size`, or a bad option.
        """
        opts = self.options(options)
        check_scores(scores, argname, self.event_dim, square=self.square)
        n = scores.shape[-1]
        if n < self.min_size:
            raise ValueError(f"{self.name}: scores need n >= {self.min_size}, got n = {n}")
        self._check_options(scores, opts)
        return opts

    def _check_options(self, scores: Tensor, opts: dict[str, Any]) -> None:
        """Hook: validate the options against ``scores`` (raise ``ValueError``)."""

    def lengths_mask(
        self, scores: Tensor, lengths: Any, *, root: int | None = None
    ) -> Tensor | None:
        """``[..., n]`` boolean mask of the vertices inside each graph (``None``: all).

        Args:
            scores: ``[..., n, n]`` (or ``[..., n]``) scores; the batch comes from them.
            lengths: ``None`` or integers broadcastable to the batch, in ``[1, n]``.
            root: a rooted graph's root: every graph must hold it (lengths > root).

        Raises:
            ValueError: on non-integer lengths, a wrong shape, or a length out of range.
        """
        if lengths is None:
            return None
        batch = tuple(scores.shape[: scores.dim() - self.event_dim])
        if root is None:
            return lengths_mask(lengths, batch, scores.shape[-1], scores.device)
        why = f"every graph holds the root {root}"
        return lengths_mask(lengths, batch, scores.shape[-1], scores.device, root + 1, why)

    # -- MAP, enumeration (noise and perturb-and-MAP: ``_perturbing``) ---------

    def map(self, scores: Tensor, **options: Any) -> Tensor:
        """The highest-scoring structure, as a 0/1 tensor in ``scores``' dtype and device.

        Raises:
            ValueError: on bad input, or ``-inf`` scores leaving no structure
                (:meth:`refuse_forbidden`).
        """
        opts = self.check(scores, **options)
        return self.refuse_forbidden(scores, self._map(scores, **opts), **opts)

    def refuse_forbidden(self, scores: Tensor, x: Tensor, **options: Any) -> Tensor:
        """``x``, solutions ``[*sample, ..., *event]`` for ``scores``, once none takes a ``-inf``.

        The solvers and trace samplers take a ``-inf`` entry only when every
        structure does, so one taken means the ``-inf`` entries leave no
        structure (the MAP would silently use a forbidden entry). A value check:
        off with the checks and while tracing.

        Raises:
            ValueError: "scores: the -inf (forbidden) entries leave no <name> ...".
        """
        if not self.forbids or not validation_enabled() or not x.numel():
            return x
        # Scored with 0 for every finite entry: -inf exactly where a read -inf entry
        # is taken (the scores themselves could overflow to ±inf on finite entries).
        forbidden = torch.where(torch.isneginf(scores.detach()), -torch.inf, 0.0)
        used = self.score(forbidden.to(scores.dtype), x.detach(), **options)
        self._checked(torch.where(torch.isneginf(used), -torch.inf, 0.0))
        return x

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
        # a value check: skipped when checks are off or torch.compile traces
        if validation_enabled() and bool(torch.isinf(log_z).any()):
            why = (
                f"the log-partition overflows {log_z.dtype} (rescale, or use float64)"
                if bool(torch.isposinf(log_z).any())
                else f"the -inf (forbidden) entries leave no {self.name} with positive probability"
            )
            raise InvalidScoresError(f"scores: {why}")
        return log_z

    def _log_partition(self, scores: Tensor, **opts: Any) -> Tensor:
        raise NotImplementedError

    def marginals(self, scores: Tensor, **options: Any) -> Tensor:
        """``μ = E[x] = ∂ log Z / ∂ θ``, differentiable when ``scores`` requires grad.

        Returns:
            A tensor like ``scores`` (symmetric for undirected structures).
        """
        return self.log_partition_and_marginals(scores, **options)[1]

    def log_partition_and_marginals(self, scores: Tensor, **options: Any) -> tuple[Tensor, Tensor]:
        """``log Z`` and ``μ`` from one evaluation of the log-partition (see both)."""
        self._require_tractable()
        opts = self.check(scores, **options)
        log_z, grad = value_and_gradient(lambda s: self._log_partition(s, **opts), scores)
        self._checked(log_z.detach())
        return log_z, (grad + grad.transpose(-1, -2) if self.symmetric else grad)

    def score(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """``<θ, x>`` over the entries the structure reads (``-inf · 0 = 0``), ``[...]``."""
        return dot(scores, x, self.event_dim)

    #: Why :meth:`contains` cannot tell (``None``: it can).
    membership: str | None = None

    def contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """``[*sample, ...]`` bool: whether each ``x`` is a structure of the support.

        Args:
            scores: ``[..., *event]`` scores (their ``-inf`` entries and lengths count).
            x: ``[*sample, ..., *solution]`` candidates.
            **opts: the structure's options (``k``, ``root``, ``lengths``).

        Raises:
            ValueError: ``x`` does not end in the solution shape, or a bad option.
            NotImplementedError: for a structure whose membership is not checked
                (:attr:`membership` says why).
        """
        if self.membership is not None:
            raise NotImplementedError(self.membership)
        opts = self.options(opts)
        want = tuple(self.solution_shape(scores.shape[scores.ndim - self.event_dim :]))
        if x.ndim < len(want) or tuple(x.shape[x.ndim - len(want) :]) != want:
            raise ValueError(f"{self.name}: x must end in {want}, got shape {tuple(x.shape)}")
        return self._contains(scores, x, **opts)

    def _contains(self, scores: Tensor, x: Tensor, **opts: Any) -> Tensor:
        """0/1 entries (subclasses check the structure)."""
        dims = tuple(range(-len(self.solution_shape(torch.Size([1] * self.event_dim))), 0))
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
        check_generator(generator, scores.device)
        self._checked(self._log_partition(scores.detach(), **opts))
        return self._sample(scores.detach(), sample_size(sample_shape), generator, **opts)

    def _sample(
        self, scores: Tensor, shape: torch.Size, generator: torch.Generator | None, **opts: Any
    ) -> Tensor:
        raise NotImplementedError
