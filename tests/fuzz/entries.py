"""Every public entry point of the library packages, as a call on one primary tensor.

An :class:`Entry` names a public callable, the shape of a valid primary input
(``[batch, *event]``), how to call it on that input and what kind of input it
takes. :mod:`mutations` turns the valid input into bad ones; :mod:`outcome`
classifies what the call does with each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

import structgrad.relaxations as R
import structgrad.solvers as S

__all__ = ["ENTRIES", "Entry"]

B, N = 3, 5


@dataclass(frozen=True)
class Entry:
    """One public entry point called on a primary tensor ``x``.

    Attributes:
        name: what is called (for the tally).
        shape: a valid ``x`` shape ``[B, *event]``.
        call: ``call(x) -> output`` (tensors, tuples of tensors, or a Distribution's values).
        event: the number of event dims of ``x``.
        arrays: numpy input is valid (the solvers: arrays in, arrays out).
        costs: ``x`` holds non-negative costs (negative or -inf entries are bad input).
        min_n: the smallest valid event size ``n``.
        square: the event is ``[n, n]``.
        options: ``label -> call(x)`` calls with a bad option value (must raise).
        paired: another argument is shaped like ``x`` (a trace, a target), so a
            mutation that changes ``x``'s shape is bad input.
        fixed_event: the entry was built for one event shape (RELAX's critic), so
            a mutation that changes the event shape is bad input.
        finite: ``-inf`` entries are bad input (a matrix inverse).
        shape_only: the values are not read (noise like ``x``, layouts), so
            NaN and infinities are not bad input.
        reads_diagonal: ``False`` where a square input's diagonal is documented
            as not read (any value there is fine).
    """

    name: str
    shape: tuple[int, ...]
    call: Callable[[Any], Any]
    event: int = 1
    arrays: bool = False
    costs: bool = False
    min_n: int = 1
    square: bool = False
    options: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    paired: bool = False
    fixed_event: bool = False
    finite: bool = False
    shape_only: bool = False
    reads_diagonal: bool = True


def _sq(name: str, call: Callable[[Any], Any], **kw: Any) -> Entry:
    return Entry(name, (B, N, N), call, event=2, square=True, **{"min_n": 2, **kw})


def _vec(name: str, call: Callable[[Any], Any], **kw: Any) -> Entry:
    return Entry(name, (B, N), call, **kw)


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _taus(make: Callable[[Any, Any], Any]) -> dict[str, Callable[[Any], Any]]:
    return {
        f"tau={t}": (lambda x, t=t: make(x, t)) for t in (0.0, -1.0, float("nan"), float("inf"))
    }


def _ks(make: Callable[[Any, Any], Any]) -> dict[str, Callable[[Any], Any]]:
    return {f"k={k}": (lambda x, k=k: make(x, k)) for k in (-1, N + 1, 2.5, "2", None)}


def _solvers() -> list[Entry]:
    return [
        _sq("solvers.max_spanning_tree", S.max_spanning_tree, arrays=True),
        _sq(
            "solvers.max_arborescence",
            S.max_arborescence,
            arrays=True,
            options={"root=5": lambda x: S.max_arborescence(x, root=N)},
        ),
        _vec(
            "solvers.top_k",
            lambda x: S.top_k(x, 2),
            arrays=True,
            options=_ks(lambda x, k: S.top_k(x, k)),
        ),
        _sq("solvers.linear_assignment", S.linear_assignment, arrays=True, min_n=1),
        _sq("solvers.crossing_matching", S.crossing_matching, arrays=True, min_n=1),
        _vec("solvers.binary_tree", S.binary_tree, arrays=True),
        Entry("solvers.grid_shortest_path", (B, 4, 4), S.grid_shortest_path, 2, True, True),
    ]


def _relaxations() -> list[Entry]:
    entries = [
        _vec(
            "relaxations.gumbel_softmax",
            lambda x: R.gumbel_softmax(x, 0.5, generator=_gen()),
            options=_taus(lambda x, t: R.gumbel_softmax(x, t)),
        ),
        _vec("relaxations.gumbel_softmax(hard)", lambda x: R.gumbel_softmax(x, 0.5, hard=True)),
        _vec(
            "relaxations.binary_concrete",
            lambda x: R.binary_concrete(x, 0.5, generator=_gen()),
            event=0,  # elementwise: any shape, scalars and n = 0 included
            options=_taus(lambda x, t: R.binary_concrete(x, t)),
        ),
        _sq("relaxations.spanning_tree_marginals", R.spanning_tree_marginals),
        _sq("relaxations.arborescence_marginals", R.arborescence_marginals),
        _vec(
            "relaxations.k_subset_marginals",
            lambda x: R.k_subset_marginals(x, 2),
            options=_ks(R.k_subset_marginals),
        ),
        _vec(
            "relaxations.k_subset_log_partition",
            lambda x: R.k_subset_log_partition(x, 2),
            options=_ks(R.k_subset_log_partition),
        ),
        _sq("relaxations.sinkhorn", lambda x: R.sinkhorn(x, tau=0.5), min_n=1),
        _sq(
            "relaxations.gumbel_sinkhorn",
            lambda x: R.gumbel_sinkhorn(x, 0.5, generator=_gen()),
            min_n=1,
            options=_taus(lambda x, t: R.gumbel_sinkhorn(x, t)),
        ),
        _vec(
            "relaxations.relaxed_top_k",
            lambda x: R.relaxed_top_k(x, 2, 0.5, generator=_gen()),
            options={**_ks(lambda x, k: R.relaxed_top_k(x, k, 0.5))},
        ),
        _sq("relaxations.independent_edges", lambda x: R.independent_edges(x, 0.5)),
    ]
    for name, shape, opts in (
        ("categorical", (B, N), {}),
        ("k_subset", (B, N), {"k": 2}),
        ("spanning_tree", (B, N, N), {}),
        ("arborescence", (B, N, N), {}),
        ("matching", (B, N, N), {}),
    ):
        entries.append(
            Entry(
                f"relaxations.sst({name})",
                shape,
                lambda x, name=name, opts=opts: R.sst(name, x, 0.5, generator=_gen(), **opts),
                event=len(shape) - 1,
                min_n=2 if len(shape) == 3 and name != "matching" else 1,
                square=len(shape) == 3,
                options=_taus(lambda x, t, name=name, opts=opts: R.sst(name, x, t, **opts)),
            )
        )
    return entries


ENTRIES: list[Entry] = [*_solvers(), *_relaxations()]
