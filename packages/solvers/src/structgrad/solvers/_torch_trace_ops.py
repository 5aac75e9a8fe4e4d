"""The trace-returning solvers as registered torch ops, so that ``torch.compile`` traces them.

The recursive Gumbel-max estimators (structgrad.estimators) run a solver with
``return_trace=True`` on every forward. Like the plain solvers
(:mod:`structgrad.solvers._torch_ops`), such a call on a CUDA tensor or while
``torch.compile`` traces goes to an op here: opaque to the tracer, with a fake
implementation that gives every output's shape, dtype and device from the
inputs' shapes alone (every trace is padded to a size fixed by ``n``, ``k`` or
the root). The traces have no device algorithm: each op runs the solver's
host path, so a CUDA tensor copies through pinned memory (see
:func:`structgrad.solvers._bridge._to_host`). An op returns the solution and
the trace's fields as a flat tuple of tensors; the functions here rebuild the
trace NamedTuple.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._arborescence import ArborescenceTrace
from ._binary_tree import BinaryTreeTrace
from ._matching import CrossingTrace
from ._spanning_tree import SpanningTreeTrace
from ._topk import TopKTrace
from ._torch_ops import fake_like, fake_square, lengths_tensor, register_op

__all__ = [
    "binary_tree_trace",
    "crossing_matching_trace",
    "max_arborescence_trace",
    "max_spanning_tree_trace",
    "top_k_trace",
]


def _index(scores: Tensor, event_dim: int, *shape: int, dtype: torch.dtype = torch.int64) -> Tensor:
    """Fake index output ``[*batch, *shape]`` for scores with ``event_dim`` event dims."""
    batch = scores.shape[: scores.ndim - event_dim]
    return torch.empty((*batch, *shape), dtype=dtype, device=scores.device)


# The host kernels: each solver's numpy path, its trace flattened into a tuple.
def _top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    from ._topk import _on_host

    mask, trace = _on_host(scores, k, True)
    return mask, trace.order, trace.size


def _top_k_fake(scores: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    # (a k < 0 gets the kernel's ValueError when the op runs, not torch.empty's)
    return fake_like(scores), _index(scores, 1, max(k, 0)), _index(scores, 1)


def _tree(scores: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    from ._spanning_tree import _on_host

    adjacency, trace = _on_host(scores, lengths, True)
    return adjacency, trace.edges, trace.components


def _tree_fake(scores: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    n = scores.shape[-1]
    return fake_like(scores), _index(scores, 2, n - 1, 2), _index(scores, 2, n - 1, n)


def _arborescence(
    scores: Tensor, root: int, lengths: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from ._arborescence import _on_host

    adjacency, trace = _on_host(scores, root, lengths, True)
    return adjacency, trace.edges, trace.members, trace.n_steps


def _arborescence_fake(
    scores: Tensor, root: int, lengths: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    n = scores.shape[-1]
    steps = max(1, 2 * n - 3)  # the trace's padded length (see ArborescenceTrace)
    members = _index(scores, 2, steps, n, dtype=torch.bool)
    return fake_like(scores), _index(scores, 2, steps, 2), members, _index(scores, 2)


def _crossing(scores: Tensor) -> tuple[Tensor, Tensor]:
    from ._matching import _crossing_on_host

    permutation, trace = _crossing_on_host(scores, True)
    return permutation, trace.edges


def _crossing_fake(scores: Tensor) -> tuple[Tensor, Tensor]:
    return fake_like(scores), _index(scores, 2, scores.shape[-1], 2)


def _binary_tree(scores: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    from ._binary_tree import _on_host

    adjacency, trace = _on_host(scores, lengths, True)
    return adjacency, trace.spans, trace.depth


def _binary_tree_fake(scores: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    n = scores.shape[-1]
    return fake_square(scores), _index(scores, 1, n, 2), _index(scores, 1, n)


_top_k_op = register_op("top_k_trace", _top_k, fake=_top_k_fake)
_tree_op = register_op("max_spanning_tree_trace", _tree, fake=_tree_fake)
_arborescence_op = register_op("max_arborescence_trace", _arborescence, fake=_arborescence_fake)
_crossing_op = register_op("crossing_matching_trace", _crossing, fake=_crossing_fake)
_binary_tree_op = register_op("binary_tree_trace", _binary_tree, fake=_binary_tree_fake)


def top_k_trace(scores: Tensor, k: int) -> tuple[Tensor, TopKTrace]:
    """The op of ``top_k(scores, k, return_trace=True)``."""
    mask, order, size = _top_k_op(scores, k)
    return mask, TopKTrace(order, size)


def max_spanning_tree_trace(scores: Tensor, lengths: Any) -> tuple[Tensor, SpanningTreeTrace]:
    """The op of ``max_spanning_tree(scores, lengths=..., return_trace=True)``."""
    adjacency, edges, components = _tree_op(scores, lengths_tensor(lengths, scores))
    return adjacency, SpanningTreeTrace(edges, components)


def max_arborescence_trace(
    scores: Tensor, root: int, lengths: Any
) -> tuple[Tensor, ArborescenceTrace]:
    """The op of ``max_arborescence(scores, root=..., lengths=..., return_trace=True)``."""
    adjacency, edges, members, n_steps = _arborescence_op(
        scores, root, lengths_tensor(lengths, scores)
    )
    return adjacency, ArborescenceTrace(edges=edges, members=members, n_steps=n_steps)


def crossing_matching_trace(scores: Tensor) -> tuple[Tensor, CrossingTrace]:
    """The op of ``crossing_matching(scores, return_trace=True)``."""
    permutation, edges = _crossing_op(scores)
    return permutation, CrossingTrace(edges)


def binary_tree_trace(scores: Tensor, lengths: Any) -> tuple[Tensor, BinaryTreeTrace]:
    """The op of ``binary_tree(scores, lengths=..., return_trace=True)``."""
    adjacency, spans, depth = _binary_tree_op(scores, lengths_tensor(lengths, scores))
    return adjacency, BinaryTreeTrace(spans, depth)
