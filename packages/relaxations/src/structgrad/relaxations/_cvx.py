"""Placeholder (replaced by the real relaxation)."""

from typing import Any


def cvx_relaxation(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
