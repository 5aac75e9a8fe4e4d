"""Placeholder (replaced by the real solver)."""

from typing import Any, NamedTuple


class SpanningTreeTrace(NamedTuple):
    """Placeholder."""

    placeholder: Any


def max_spanning_tree(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
