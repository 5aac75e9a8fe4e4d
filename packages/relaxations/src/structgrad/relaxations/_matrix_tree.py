"""Placeholder (replaced by the real relaxation)."""

from typing import Any


def spanning_tree_marginals(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def arborescence_marginals(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
