"""A solver's trace in the canonical form of the enumeration, checked step by step.

See :mod:`structgrad.testing.traces`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._trace_enum import _SEQUENTIAL, Entry, Step, Trace, _cycle, _into, _machine, _make

__all__ = ["canonical_trace"]


def _check_cle(steps: list[Step], n: int, root: int) -> None:
    """Raise unless ``steps`` are the ones CLE takes: one per vertex, one per cycle it closes."""
    chosen: dict[frozenset[int], Entry] = {}
    for e, c in steps:
        members = frozenset(j for _, j in c)
        if members in chosen or root in members or e not in c:
            raise ValueError(f"arborescence: a chosen edge lies outside its step: {steps}")
        chosen[members] = e
    singles = [frozenset({v}) for v in range(n) if v != root]
    if any(m not in chosen for m in singles):
        raise ValueError(f"arborescence: some vertex has no step of its own: {steps}")
    top, used = {m: chosen[m] for m in singles}, len(singles)
    while (merged := _cycle(top)) is not None:
        if merged not in chosen:
            raise ValueError(f"arborescence: the cycle {sorted(merged)} is never contracted")
        top = {s: e for s, e in top.items() if not s <= merged}
        top[merged], used = chosen[merged], used + 1
    if used != len(steps):  # each step met once: the n - 1 vertices, then each contraction
        raise ValueError(f"arborescence: steps CLE never takes: {steps}")


def _check_splits(spans: NDArray[np.int64], n: int) -> None:
    """Raise unless each span of the recursion from ``[0, n)`` is split by exactly one node."""
    nodes: dict[tuple[int, int], list[int]] = {}
    for i, (lo, hi) in enumerate(spans.tolist()):
        nodes.setdefault((lo, hi), []).append(i)
    todo = [(0, n)]
    while todo:
        lo, hi = todo.pop()
        if lo < hi:
            at = nodes.pop((lo, hi), [])
            if len(at) != 1 or not lo <= at[0] < hi:
                raise ValueError(f"binary_tree: span [{lo}, {hi}) has split nodes {at}")
            todo += [(lo, at[0]), (at[0] + 1, hi)]
    if nodes or len(spans) != n:
        raise ValueError(f"binary_tree: spans outside the recursion: {spans.tolist()}")


def canonical_trace(
    structure: str, trace: Any, n: int, *, index: Any = (), k: int | None = None, root: int = 0
) -> Trace:
    """One solver trace in the canonical form of :func:`enumerate_traces`.

    The solver's choices are replayed through this module's own candidate sets, so a
    choice outside them (a solver bug) raises. Arrays may be numpy or CPU torch.

    Args:
        structure: the structure name.
        trace: ``int`` (or int array) argmax for ``categorical``; else the trace
            NamedTuple of structgrad.solvers: ``TopKTrace``, ``SpanningTreeTrace``,
            ``ArborescenceTrace``, ``CrossingTrace`` or ``BinaryTreeTrace``.
        n: instance size (graphs of full length; ``lengths`` are not supported).
        index: batch index of the instance inside ``trace`` (``()`` if unbatched).
        k: unused (a ``TopKTrace`` has its own length); accepted so that the options
            of :func:`enumerate_traces` pass through.
        root: the root, for ``arborescence`` (checked: no step's members hold it).

    Returns:
        The :class:`Trace`, equal to one element of ``enumerate_traces(structure, n)``.

    Raises:
        ValueError: if the solver's trace is not a valid trace of the algorithm.
    """

    def pick(a: Any) -> NDArray[np.int64]:
        return np.asarray(a)[index].astype(np.int64)

    if structure in _SEQUENTIAL:
        if structure == "categorical":
            choices: list[Entry] = [(int(pick(trace)),)]
        else:
            raw = pick(trace.order)[:, None] if structure == "k_subset" else pick(trace.edges)
            choices = [tuple(int(i) for i in row) for row in raw]
        state, step = _machine(structure, n, len(choices))  # k only matters for k_subset
        steps: list[Step] = []
        for c in choices:
            here = step(state)
            if here is None or c not in here[0]:
                raise ValueError(f"{structure}: choice {c} is not a candidate after {steps}")
            steps.append((c, here[0]))
            state = here[1](c)
        if step(state) is not None:
            raise ValueError(f"{structure}: trace ends early after {len(steps)} steps")
    elif structure == "binary_tree":
        spans = pick(trace.spans)
        _check_splits(spans, n)
        steps = [((i,), tuple((j,) for j in range(lo, hi))) for i, (lo, hi) in enumerate(spans)]
    elif structure == "arborescence":
        size = int(pick(trace.n_steps))
        edges, members = pick(trace.edges)[:size], np.asarray(trace.members)[index][:size]
        steps = [
            ((int(e[0]), int(e[1])), _into(frozenset(np.flatnonzero(m).tolist()), n))
            for e, m in zip(edges, members, strict=True)
        ]
        _check_cle(steps, n, root)
    else:
        raise ValueError(f"unknown structure {structure!r}")
    return _make(structure, tuple(steps), n)
