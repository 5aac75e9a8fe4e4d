"""Placeholder (replaced by the real solver)."""

from typing import Any, NamedTuple


class ArborescenceTrace(NamedTuple):
    """Placeholder."""

    placeholder: Any


def max_arborescence(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
