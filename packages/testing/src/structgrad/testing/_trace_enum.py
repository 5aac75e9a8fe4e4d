"""Trace enumeration (pure Python); see :mod:`structgrad.testing.traces`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_TRACES", "Entry", "Step", "Trace", "enumerate_traces"]

Entry = tuple[int, ...]
Step = tuple[Entry, tuple[Entry, ...]]
_SEQUENTIAL = ("categorical", "k_subset", "spanning_tree", "matching")
_STRUCTURES = (*_SEQUENTIAL, "arborescence", "binary_tree")
MAX_TRACES = 10**6


@dataclass(frozen=True)
class Trace:
    """One execution trace; equality and hashing use ``steps`` only.

    Attributes:
        steps: ``((chosen_entry, candidate_entries), ...)`` in canonical order.
        structure: the resulting 0/1 structure, float64 ``[n]`` (categorical one-hot,
            k-subset mask) or ``[n, n]`` (spanning tree: symmetric adjacency;
            arborescence: ``[i, j] = 1`` for the edge i→j; matching: permutation
            matrix; binary tree: ``[parent, child] = 1``), as the solvers return it.
    """

    steps: tuple[Step, ...]
    structure: NDArray[np.float64] = field(compare=False, repr=False)


# --- sequential algorithms: state -> None when done, else (candidates, advance) -----------

Machine = Callable[[Any], "tuple[tuple[Entry, ...], Callable[[Entry], Any]] | None"]


def _machine(structure: str, n: int, k: int) -> tuple[Any, Machine]:
    """Initial state and step function of a sequential structure."""
    if structure == "categorical":
        every = tuple((j,) for j in range(n))
        return False, lambda done: None if done else (every, lambda c: True)
    if structure == "k_subset":

        def top(taken: frozenset[int]) -> Any:
            cands = tuple((j,) for j in range(n) if j not in taken)
            return None if len(taken) == k else (cands, lambda c: taken | {c[0]})

        return frozenset(), top
    if structure == "spanning_tree":

        def kruskal(label: tuple[int, ...]) -> Any:
            if len(set(label)) == 1:
                return None
            pairs = itertools.combinations(range(n), 2)
            cands = tuple((i, j) for i, j in pairs if label[i] != label[j])

            def merge(e: Entry) -> tuple[int, ...]:
                a, b = sorted((label[e[0]], label[e[1]]))
                return tuple(a if x == b else x for x in label)  # label = smallest vertex

            return cands, merge

        return tuple(range(n)), kruskal

    def crossing(taken: tuple[frozenset[int], frozenset[int]]) -> Any:
        rows, cols = taken
        free = itertools.product(sorted(set(range(n)) - rows), sorted(set(range(n)) - cols))
        cands = tuple(free)
        return None if not cands else (cands, lambda e: (rows | {e[0]}, cols | {e[1]}))

    return (frozenset(), frozenset()), crossing


def _chains(state: Any, step: Machine) -> Iterator[tuple[Step, ...]]:
    """Every choice sequence of a sequential algorithm, depth first."""
    here = step(state)
    if here is None:
        yield ()
        return
    cands, advance = here
    for c in cands:
        for rest in _chains(advance(c), step):
            yield ((c, cands), *rest)


def _splits(lo: int, hi: int) -> Iterator[tuple[Step, ...]]:
    """Binary-tree traces of the subarray ``[lo, hi)``: its argmax, then both sides."""
    if lo >= hi:
        yield ()
        return
    cands = tuple((j,) for j in range(lo, hi))
    for m in range(lo, hi):
        for left, right in itertools.product(_splits(lo, m), list(_splits(m + 1, hi))):
            yield ((m,), cands), *left, *right


def _into(members: frozenset[int], n: int) -> tuple[Entry, ...]:
    """Candidate in-edges of a super-vertex: from outside it (root included) into it."""
    return tuple((i, j) for i in range(n) for j in range(n) if i not in members and j in members)


def _cle(n: int, root: int) -> Iterator[tuple[Step, ...]]:
    """Recursive Chu-Liu/Edmonds traces: one step per vertex, one per contracted cycle."""
    leaves = [frozenset({v}) for v in range(n) if v != root]
    cands = [_into(m, n) for m in leaves]
    for choice in itertools.product(*cands):
        yield from _contract(
            dict(zip(leaves, choice, strict=True)), list(zip(choice, cands, strict=True)), n
        )


def _cycle(top: dict[frozenset[int], Entry]) -> frozenset[int] | None:
    """The members of a cycle of the super-vertices' chosen in-edges, or ``None``."""
    owner = {v: m for m in top for v in m}  # the root has no owner
    for start in top:
        seen: list[frozenset[int]] = []
        m: frozenset[int] | None = start
        while m is not None and m not in seen:
            seen.append(m)
            m = owner.get(top[m][0])
        if m is not None:  # walked into a cycle: the part of `seen` from m on
            return frozenset().union(*seen[seen.index(m) :])
    return None


def _contract(top: dict[frozenset[int], Entry], steps: list[Step], n: int) -> Any:
    """Contract one cycle of the top-level super-vertices' chosen edges, recursively."""
    merged = _cycle(top)
    if merged is None:
        yield tuple(steps)
        return
    rest = {s: e for s, e in top.items() if not s <= merged}
    c = _into(merged, n)
    for e in c:
        yield from _contract({**rest, merged: e}, [*steps, (e, c)], n)


def _structure(structure: str, steps: tuple[Step, ...], n: int) -> NDArray[np.float64]:
    """The 0/1 structure a trace produces (independent of the solvers' code)."""
    x = np.zeros((n,) if structure in ("categorical", "k_subset") else (n, n))
    if structure == "arborescence":
        chosen = {frozenset(j for _, j in c): e for e, c in steps}

        def children(m: frozenset[int]) -> list[frozenset[int]]:
            inner = [s for s in chosen if s < m]
            return [s for s in inner if not any(s < t for t in inner)]

        def keep(m: frozenset[int]) -> None:
            x[chosen[m]] = 1
            enter(m, chosen[m][1])

        def enter(m: frozenset[int], v: int) -> None:
            # CLE expansion: the cycle member entered at v drops its own in-edge.
            for c in children(m):
                enter(c, v) if v in c else keep(c)

        for m in [s for s in chosen if not any(s < t for t in chosen)]:
            keep(m)
    elif structure == "binary_tree":
        span = {e[0]: (c[0][0], c[-1][0] + 1) for e, c in steps}
        for child, (lo, hi) in span.items():
            around = [p for p, (a, b) in span.items() if p != child and a <= lo and hi <= b]
            if around:  # the parent is the node of the smallest enclosing span
                x[min(around, key=lambda p: span[p][1] - span[p][0]), child] = 1
    else:
        for e, _ in steps:
            x[e] = 1
            if structure == "spanning_tree":
                x[e[::-1]] = 1
    return x


def _make(structure: str, steps: tuple[Step, ...], n: int) -> Trace:
    ordered = tuple(sorted(steps)) if structure in ("arborescence", "binary_tree") else steps
    return Trace(ordered, _structure(structure, ordered, n))


def _count(structure: str, n: int, k: int) -> int | None:
    """Number of traces when known in closed form (``None`` for arborescences)."""
    f = math.factorial
    counts = {
        "categorical": n,
        "k_subset": f(n) // f(n - k) if 0 <= k <= n else 0,
        "spanning_tree": n ** (n - 2) * f(n - 1) if n >= 2 else 1,
        "matching": f(n) ** 2,
        "binary_tree": math.comb(2 * n, n) // (n + 1),
    }
    return counts.get(structure)


def enumerate_traces(
    structure: str, n: int, *, k: int | None = None, root: int = 0, max_traces: int = MAX_TRACES
) -> list[Trace]:
    """Every trace of a recursive Gumbel-max algorithm on ``n`` items or vertices.

    Args:
        structure: one of ``categorical``, ``k_subset``, ``spanning_tree``,
            ``arborescence``, ``matching``, ``binary_tree``.
        n: instance size (``n >= 1``; ``n >= 2`` for the graph structures).
        k: subset size, in ``[0, n]``: required for ``k_subset`` (a default of 1
            would silently give the categorical law), ignored by the others.
        root: the root vertex, in ``[0, n)``: read (and checked) by
            ``arborescence`` only, so that one set of options serves every structure.
        max_traces: budget; more traces raise a ``ValueError``.

    Returns:
        The traces, each once, in a deterministic order. Counts: ``n``; ``n!/(n-k)!``;
        ``n^(n-2) (n-1)!``; ``(n!)^2``; the Catalan number ``C_n``; arborescences have
        no closed form (82 traces at ``n = 4``).

    Raises:
        ValueError: on an unknown structure, bad ``n``, ``k`` or ``root``, or too many traces.
    """
    if structure not in _STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; expected one of {_STRUCTURES}")
    graph = structure in ("spanning_tree", "arborescence")
    if structure != "k_subset":
        k = 1  # (k, root: read only where they mean something)
    elif k is None:
        raise ValueError("k_subset needs k, the subset size")
    root = root if structure == "arborescence" else 0
    if n < (2 if graph else 1) or not 0 <= k <= n or not 0 <= root < n:
        raise ValueError(f"bad instance for {structure}: n={n}, k={k}, root={root}")
    count = _count(structure, n, k)
    if count is not None and count > max_traces:
        raise ValueError(f"{structure} with n={n} has {count} traces > max_traces={max_traces}")
    if structure in _SEQUENTIAL:
        state, step = _machine(structure, n, k)
        chains: Iterator[tuple[Step, ...]] = _chains(state, step)
    else:
        chains = _cle(n, root) if structure == "arborescence" else _splits(0, n)
    out: list[Trace] = []
    for steps in chains:
        if len(out) == max_traces:
            raise ValueError(f"{structure} with n={n} has more than {max_traces} traces")
        out.append(_make(structure, steps, n))
    return out
