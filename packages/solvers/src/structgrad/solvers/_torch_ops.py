"""The solvers as registered torch ops, so that ``torch.compile`` traces them.

Imported only once a torch tensor reaches a solver (torch stays optional). A
solver called on a tensor while ``torch.compile`` traces (see
:func:`structgrad.solvers._bridge.traced`) calls its op here instead of
converting to numpy: the op is opaque to the tracer, and its fake
implementation gives the output's shape, dtype and device without running
it. At run time each op runs the solver's usual path (the compiled kernel on
the host, results back on the input's device), so compiled and eager calls
return the same solutions. Trace-returning calls are not ops: they stay eager.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "grid_shortest_path",
    "linear_assignment",
    "max_arborescence",
    "max_spanning_tree",
    "top_k",
]


def _like(scores: Tensor) -> Tensor:
    """Fake output: the shape of ``scores`` in its floating dtype (solutions are 0/1)."""
    dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    return torch.empty(scores.shape, dtype=dtype, device=scores.device)


def _register(name: str, solve: Callable[..., Tensor]) -> Any:
    """``solve`` as the op ``structgrad::<name>`` with the fake output :func:`_like`."""
    op = torch.library.custom_op(f"structgrad::{name}", solve, mutates_args=())
    op.register_fake(lambda scores, *args: _like(scores))
    return op


def _top_k(scores: Tensor, k: int) -> Tensor:
    from ._topk import top_k as solve

    out: Tensor = solve(scores, k)
    return out


def _max_spanning_tree(scores: Tensor, lengths: Tensor | None) -> Tensor:
    from ._spanning_tree import max_spanning_tree as solve

    out: Tensor = solve(scores, lengths=lengths)
    return out


def _max_arborescence(scores: Tensor, root: int, lengths: Tensor | None) -> Tensor:
    from ._arborescence import max_arborescence as solve

    out: Tensor = solve(scores, root=root, lengths=lengths)
    return out


def _linear_assignment(scores: Tensor) -> Tensor:
    from ._matching import linear_assignment as solve

    out: Tensor = solve(scores)
    return out


def _grid_shortest_path(scores: Tensor) -> Tensor:
    from ._grid_path import grid_shortest_path as solve

    out: Tensor = solve(scores)
    return out


top_k = _register("top_k", _top_k)
linear_assignment = _register("linear_assignment", _linear_assignment)
grid_shortest_path = _register("grid_shortest_path", _grid_shortest_path)
_tree_op = _register("max_spanning_tree", _max_spanning_tree)
_arborescence_op = _register("max_arborescence", _max_arborescence)


def _lengths(lengths: Any, like: Tensor) -> Tensor | None:
    # The ops take lengths as a tensor (or None); lists and arrays are converted.
    return None if lengths is None else torch.as_tensor(lengths, device=like.device)


def max_spanning_tree(scores: Tensor, lengths: Any) -> Tensor:
    """The op of :func:`structgrad.solvers.max_spanning_tree` (any lengths)."""
    out: Tensor = _tree_op(scores, _lengths(lengths, scores))
    return out


def max_arborescence(scores: Tensor, root: int, lengths: Any) -> Tensor:
    """The op of :func:`structgrad.solvers.max_arborescence` (any lengths)."""
    out: Tensor = _arborescence_op(scores, root, _lengths(lengths, scores))
    return out
