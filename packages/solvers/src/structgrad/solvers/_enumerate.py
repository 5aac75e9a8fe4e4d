"""Placeholder (replaced by the real solver)."""

from typing import Any


def enumerate_spanning_trees(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def enumerate_arborescences(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def enumerate_k_subsets(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def enumerate_permutations(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError


def enumerate_binary_trees(*args: Any, **kwargs: Any) -> Any:
    """Placeholder."""
    raise NotImplementedError
