"""Trace enumeration and canonical forms (pure Python); see :mod:`structgrad.testing.traces`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_TRACES", "Entry", "Step", "Trace", "canonical_trace", "enumerate_traces"]

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
    structure: str, n: int, *, k: int = 1, root: int = 0, max_traces: int = MAX_TRACES
) -> list[Trace]:
    """Every trace of a recursive Gumbel-max algorithm on ``n`` items or vertices.

    Args:
        structure: one of ``categorical``, ``k_subset``, ``spanning_tree``,
            ``arborescence``, ``matching``, ``binary_tree``.
        n: instance size (``n >= 1``; ``n >= 2`` for the graph structures).
        k: subset size (``k_subset`` only), in ``[0, n]``.
        root: the root vertex (``arborescence`` only), in ``[0, n)``.
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


def canonical_trace(
    structure: str, trace: Any, n: int, *, index: Any = (), k: int = 1, root: int = 0
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
