"""Placeholder (replaced by the real relaxation)."""

from typing import Any


def sst(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
