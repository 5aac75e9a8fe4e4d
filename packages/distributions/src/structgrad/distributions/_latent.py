"""The contract every latent layer follows (relaxations, estimators, models).

A latent layer is an ``nn.Module`` built from a structure and options:

- ``z = layer(logits, *, lengths=None, generator=None)`` draws a sample;
- ``loss = layer.attach(per_sample_loss, draw=None)`` returns the loss to
  backpropagate: the loss itself for pathwise layers (the gradient flows
  through ``z``), the loss plus a zero-valued surrogate whose gradient is the
  score-function estimate otherwise;
- ``layer.sample_hard(logits, ...)`` is the perturb-and-MAP sample ``MAP(θ + G)``
  (or the MAP), without gradient, for evaluation;
- state (baselines, adaptive λ, critics) lives in buffers and parameters, so it
  is in ``state_dict()``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._structure import Structure
from .checks import check_generator, check_int, check_tensor

__all__ = ["LatentLayer"]


class LatentLayer(nn.Module):
    """Base class of the latent layers; see the module docstring for the contract.

    Attributes:
        pathwise: whether the gradient flows through the sample (class attribute).
        method: the method name (one of ``structgrad.models.METHODS``), set by the
            factory that built the layer (``""`` otherwise).
        structure: the :class:`Structure` the layer samples, ``None`` for a
            layer around a user's solver.
        structure_options: the structure's options (``k``, ``root``, ...) that
            :meth:`sample_hard` passes on.
    """

    pathwise: bool = True
    #: Whether the layer takes per-call ``lengths`` (padded batches).
    takes_lengths: bool = True

    def __init__(
        self, structure: Structure | None = None, structure_options: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.method = ""
        self.structure = structure
        self.structure_options = dict(structure_options or {})
        for name in ("k", "root"):  # integer options; their upper bound is checked per call
            if name in self.structure_options:
                check_int(self.structure_options[name], name, 0)

    @property
    def input_name(self) -> str:
        """The input's name in messages (``"scores"`` or ``"costs"`` for some layers)."""
        return "logits"

    def forward(
        self,
        logits: Tensor,
        *,
        lengths: Any = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw a sample ``[*batch, *event]`` (``[S, *batch, *event]`` with samples).

        Args:
            logits: ``[*batch, *event]`` scores θ.
            lengths: optional ``[*batch]`` sizes (structures that take them).
            generator: optional ``torch.Generator`` on the logits' device.
        """
        check_tensor(logits, self.input_name)
        check_generator(generator, logits.device)
        return self._sample(logits, self._lengths(lengths), generator)

    def _sample(self, logits: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """Hook: the sample (subclasses)."""
        raise NotImplementedError

    def _lengths(self, lengths: Any) -> Any:
        # One message for every layer (each layer below had its own wording).
        s = self.structure
        if lengths is not None and (
            not self.takes_lengths or (s is not None and "lengths" not in s.option_names)
        ):
            of = f" of {s.name}" if s is not None else ""
            raise ValueError(f"{self._name()}{of} takes no lengths: mask entries with -inf logits")
        return lengths

    def attach(self, loss: Tensor, draw: Any = None, *, baseline: Tensor | None = None) -> Tensor:
        """The loss to backpropagate: ``loss`` itself for a pathwise layer.

        Args:
            loss: ``[*batch]`` per-sample loss computed from a sample of this layer.
            draw: the sample (or draw) the loss was computed from; pathwise
                layers do not need it.
            baseline: a learned baseline (score-function layers that take one);
                a pathwise layer refuses it.

        Raises:
            ValueError: if a baseline is passed to a pathwise layer.
        """
        if baseline is not None:
            raise ValueError(
                f"{self._name()} is pathwise and takes no baseline; baselines are for "
                "score-function methods (e.g. 'nvil')"
            )
        return loss

    def sample_hard(
        self,
        logits: Tensor,
        *,
        lengths: Any = None,
        generator: torch.Generator | None = None,
        noise: bool = True,
    ) -> Tensor:
        """A hard sample ``MAP(θ + G)`` (the MAP with ``noise=False``), without gradient.

        This is what the reference code evaluates with. For arborescences it is
        the maximum arborescence of ``θ + G`` (perturb-and-MAP), which is not
        the recursive-Gumbel law the score-function layers sample.

        Args:
            logits: ``[*batch, *event]`` as for :meth:`forward`.
            lengths: optional ``[*batch]`` sizes (structures that take them).
            generator: optional ``torch.Generator``.
            noise: perturb with the structure's standard Gumbel noise.

        Returns:
            ``[*batch, *event]`` 0/1 structure in the logits' dtype.
        """
        check_tensor(logits, self.input_name)
        check_generator(generator, logits.device)
        return self._sample_hard(logits, self._lengths(lengths), generator, noise)

    def _sample_hard(
        self, logits: Tensor, lengths: Any, generator: torch.Generator | None, noise: bool
    ) -> Tensor:
        """Hook: the structure's perturb-and-MAP sample with the layer's options."""
        if self.structure is None:
            raise ValueError(f"{self._name()} has no structure to take a MAP of")
        options = dict(self.structure_options)
        if lengths is not None:
            options["lengths"] = lengths
        return self.structure.map_sample(logits, noise=noise, generator=generator, **options)

    def _name(self) -> str:
        return repr(self.method) if self.method else type(self).__name__
