"""``structure(name)``: the one place where a structure's name is resolved."""

from __future__ import annotations

from ._structure import Structure
from ._structures import (
    BinaryTreeStructure,
    CategoricalStructure,
    GridPathStructure,
    KSubsetStructure,
    MatchingStructure,
)
from ._trees import ArborescenceStructure, SpanningTreeStructure

__all__ = ["STRUCTURES", "structure"]

_ALL: dict[str, Structure] = {
    s.name: s
    for s in (
        CategoricalStructure(),
        KSubsetStructure(),
        SpanningTreeStructure(),
        ArborescenceStructure(),
        MatchingStructure(),
        BinaryTreeStructure(),
        GridPathStructure(),
    )
}

#: The structure names, in the order of the architecture's table.
STRUCTURES: tuple[str, ...] = tuple(_ALL)


def structure(name: str | Structure) -> Structure:
    """The :class:`Structure` called ``name`` (a Structure is returned as it is).

    Args:
        name: one of ``categorical``, ``k_subset``, ``spanning_tree``,
            ``arborescence``, ``matching``, ``binary_tree``, ``grid_path``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(name, Structure):
        return name
    try:
        return _ALL[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"structure: unknown name {name!r}; known: {', '.join(STRUCTURES)}"
        ) from None
