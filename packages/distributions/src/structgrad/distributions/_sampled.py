"""The base of every law here: ``sample`` without autograd, and clear messages for what it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["Sampled", "sample_size"]


def sample_size(sample_shape: Any) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` (of ``sample`` and ``rsample``).

    Raises:
        TypeError: ``sample_shape`` is not a sequence of ints.
        ValueError: ``sample_shape`` has a negative size.
    """
    try:
        shape = torch.Size(sample_shape)
    except TypeError:
        raise TypeError(f"sample_shape must be a sequence of ints, got {sample_shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"sample_shape must not be negative, got {tuple(shape)}")
    return shape


class Sampled(Distribution):
    """A distribution whose ``sample`` is its ``_draw`` without autograd.

    ``sample(sample_shape=(), *, generator=None)`` returns
    ``[*sample_shape, *batch_shape, *event_shape]`` with no gradient; each
    subclass says what it draws in ``_draw``.
    """

    def sample(
        self,
        sample_shape: Sequence[int] = torch.Size(),
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples ``[*sample_shape, *batch, *event]``, no gradient (see ``_draw``).

        Raises:
            TypeError: ``sample_shape`` is not a sequence of ints.
            ValueError: ``sample_shape`` has a negative size.
        """
        with torch.no_grad():
            return self._draw(sample_size(sample_shape), generator)

    def _draw(self, sample_shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    # torch's defaults raise a NotImplementedError without a word: say what to do.
    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form mean: estimate it from sample()"
        )

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form variance: estimate it from sample()"
        )

    def entropy(self) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no tractable entropy: estimate it as "
            "-log_prob(sample((S,))).mean(0) where log_prob is exact"
        )

    def rsample(
        self,
        sample_shape: Sequence[int] = torch.Size(),
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no rsample (its samples are discrete): use sample() "
            "with a score-function estimator (structgrad.estimators)"
        )

    def _check_event(self, value: Any) -> Tensor:
        """``value`` if it is a tensor whose trailing dims are the event shape.

        Raises:
            TypeError: ``value`` is not a ``torch.Tensor``.
            ValueError: its trailing dims are not the event shape (naming both).
        """
        if not isinstance(value, Tensor):
            raise TypeError(f"value expects a torch.Tensor, got {type(value).__name__}")
        event = tuple(self.event_shape)
        if value.dim() < len(event) or tuple(value.shape[value.dim() - len(event) :]) != event:
            raise ValueError(
                f"value must end in the event shape {event}, got shape {tuple(value.shape)}"
            )
        return value
