"""Placeholder (replaced by the real relaxation)."""

from typing import Any


def sample_gumbel(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def gumbel_softmax(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def binary_concrete(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def straight_through(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
