"""The regularised-argmax relaxation of a structure (a mixin of ``Structure``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor

from ._utils import relaxation_input
from .checks import as_tau, check_options

__all__ = ["Relaxing"]


class Relaxing:
    """:meth:`relax` and its options, for a structure with ``check`` and ``marginals``.

    The class attributes are documented on ``Structure``.
    """

    event_dim: ClassVar[int]
    relax_option_names: ClassVar[tuple[str, ...]] = ()
    relax_option_checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    relax_missing: ClassVar[str | None] = None
    relax_per_entry_tau: ClassVar[bool] = False
    relaxation: ClassVar[str | None] = "marginals"

    def check(self, scores: Tensor, *, argname: str = "scores", **options: Any) -> dict[str, Any]:
        """Validate ``scores`` and ``options`` (``Structure.check``)."""
        raise NotImplementedError

    def marginals(self, scores: Tensor, **options: Any) -> Tensor:
        """The exponential family's marginals (``Structure.marginals``)."""
        raise NotImplementedError

    @property
    def relaxable(self) -> bool:
        """Whether :meth:`relax` (the stochastic softmax trick's relaxed argmax) exists."""
        return self.relax_missing is None

    def relax(self, scores: Tensor, *, tau: float | Tensor = 1.0, **options: Any) -> Tensor:
        """The regularised argmax ``argmax_{μ ∈ conv 𝒳} <μ, θ> + τ H(μ)``, like ``scores``.

        For an exponential family this is the marginals of ``p ∝ exp(<θ, x>/τ)``
        (``H`` its entropy); for matchings, Sinkhorn's doubly stochastic matrix.
        At ``θ + G`` (Gumbel ``G``) it is the stochastic softmax trick's relaxed
        sample (Paulus et al. 2020).

        Args:
            scores: the structure's scores ``[..., *event]``.
            tau: temperature ``> 0``, a float or a tensor broadcastable to ``scores``
                with size 1 along the event dims (one per instance), unless
                :attr:`relax_per_entry_tau`.
            **options: the structure's options and :attr:`relax_option_names`.

        Raises:
            NotImplementedError: naming why, for a structure without one.
        """
        if self.relax_missing is not None:
            raise NotImplementedError(self.relax_missing)
        accepted = (*self.option_names, *self.relax_option_names, "tau")  # type: ignore[attr-defined]
        check_options(f"{self.name}.relax", options, accepted)  # type: ignore[attr-defined]
        extra = {k: options.pop(k) for k in self.relax_option_names if k in options}
        opts = self.check(scores, **options)
        per_instance = () if self.relax_per_entry_tau else range(-self.event_dim, 0)
        t = as_tau(tau, scores, event_dims=per_instance)
        return self._relax(scores, t, **opts, **extra)

    def relax_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with the relaxation's own ones checked now, as far as they can be.

        For a layer that keeps them for later calls: a bad ``max_range`` or
        ``n_iters`` is refused when the layer is built, not at its first draw.

        Raises:
            ValueError: naming the option (``TypeError`` for a wrong type).
        """
        checks = self.relax_option_checks
        return {k: checks[k](v) if k in checks else v for k, v in options.items()}

    def _relax(self, scores: Tensor, tau: Tensor, **opts: Any) -> Tensor:
        return self.marginals(relaxation_input(scores, tau), **opts)
