"""The base of the laws over one structure's solutions (the Gibbs laws and perturb-and-MAP).

A law holds a :class:`Structure`, its completed options (``k``, ``root``,
``lengths``), the scores ``logits`` and the temperature ``tau`` of its relaxed
sample; this base checks them once, expands them to a larger batch, and checks
the values handed to ``log_prob``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from ._registry import structure as resolve
from ._sampled import Sampled
from ._structure import Structure
from .checks import as_tau, check_options, check_tau

__all__ = ["StructuredLaw"]


class StructuredLaw(Sampled):
    """A law over the solutions of one structure, scored by ``logits``.

    Subclasses call :meth:`_setup` from ``__init__`` and say what they draw in ``_draw``.

    Attributes:
        structure: the :class:`Structure`.
        options: its completed options (``k``, ``root``, ``lengths``, ...).
        logits: the scores θ, ``[*batch, *scores event]``.
        tau: the temperature of ``rsample``: a float, or a tensor broadcastable to
            ``logits`` with size 1 along the event dims (one per instance; kept
            as given, so a learned one gets its gradient).
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {"logits": constraints.real}
    structure: Structure
    options: dict[str, Any]
    logits: Tensor
    tau: float | Tensor

    def _setup(
        self,
        name: str | Structure,
        logits: Tensor,
        tau: float | Tensor,
        validate_args: bool | None,
        **options: Any,
    ) -> None:
        """Check ``logits``, ``tau`` and the options; set the batch and event shapes.

        Raises:
            ValueError: naming the bad argument (see :meth:`Structure.check`); an
                unknown option lists the accepted ones, an old name (``temperature``)
                names its new one (``tau``).
        """
        self.structure = resolve(name)
        owner = type(self).__name__  # KSubset, or PerturbAndMAP('k_subset')
        if getattr(self, "structure_name", None) is None:
            owner += f"({self.structure.name!r})"
        check_options(owner, options, (*self.structure.option_names, "tau", "validate_args"))
        d = self.structure.event_dim
        self.options = self.structure.check(logits, argname="logits", **options)
        self.logits = logits
        if isinstance(tau, Tensor):
            # positive, finite, one per instance, broadcastable: or a ValueError
            as_tau(tau, logits, event_dims=range(-d, 0))
            self.tau = tau
        else:
            self.tau = check_tau(tau)
        event = self.structure.solution_shape(logits.shape[-d:])
        super().__init__(logits.shape[:-d], event, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.independent(constraints.boolean, len(self.event_shape))

    @property
    def mode(self) -> Tensor:
        """The MAP structure ``MAP(θ)`` (through structgrad.solvers), 0/1 like ``logits``.

        Raises:
            ValueError: where the ``-inf`` logits leave no structure.
        """
        return self.structure.map(self.logits, **self.options)

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> StructuredLaw:
        """The same law broadcast to ``batch_shape`` (options, ``lengths`` and ``tau`` kept)."""
        new = self._get_checked_instance(type(self), _instance)
        shape = torch.Size(batch_shape)
        new.structure = self.structure
        new.options = dict(self.options)
        if new.options.get("lengths") is not None:
            new.options["lengths"] = torch.as_tensor(new.options["lengths"]).expand(shape)
        # The scores' event dims, which differ from the solutions' for binary trees.
        scores_event = self.logits.shape[len(self.batch_shape) :]
        new.logits = self.logits.expand(shape + scores_event)
        new.tau = self.tau
        Distribution.__init__(new, shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _check_value(self, value: Any) -> Tensor:
        """``value`` if it is a tensor ending in the event shape, in the support when validating.

        Raises:
            TypeError: ``value`` is not a ``torch.Tensor``.
            ValueError: its trailing dims are not the event shape, or (with
                ``validate_args``) an entry is not 0/1, torch's message.
        """
        self._check_event(value)
        if self._validate_args and value.numel():  # torch's check cannot reshape empties
            self._validate_sample(value)
        return value
