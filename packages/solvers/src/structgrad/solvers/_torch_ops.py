"""The solvers as registered torch ops, so that ``torch.compile`` traces them.

Imported only once a torch tensor reaches a solver (torch stays optional). A
solver called on a CUDA tensor, or on any tensor while ``torch.compile``
traces (see :func:`structgrad.solvers._bridge.traced_op`), calls its op here:
the op is opaque to the tracer, and its fake implementation gives the
output's shape, dtype and device without running it. On the CPU each op runs
the solver's usual path (the compiled kernel), so compiled and eager calls
return the same solutions. On CUDA, top-k, the spanning tree, the grid
path and the assignment run the device-resident twins of
:mod:`structgrad.solvers._torch_native` and
:mod:`structgrad.solvers._torch_assignment` (shapes are checked, score values
are not read; the spanning tree's ``lengths`` are read to check them); the
arborescence and the crossing matching copy through the host. Each op takes
its scores detached: solutions carry no gradient, on every path.
Trace-returning calls have their ops in :mod:`structgrad.solvers._torch_trace_ops`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import _torch_native as _native
from ._torch_assignment import linear_assignment as _native_assignment
from ._validate import check_int, check_lengths, check_shape

__all__ = [
    "binary_tree",
    "crossing_matching",
    "fake_like",
    "fake_square",
    "grid_shortest_path",
    "lengths_tensor",
    "linear_assignment",
    "max_arborescence",
    "max_spanning_tree",
    "register_op",
    "top_k",
]


def fake_like(scores: Tensor) -> Tensor:
    """Fake output: the shape of ``scores`` in its floating dtype (solutions are 0/1)."""
    dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    return torch.empty(scores.shape, dtype=dtype, device=scores.device)


def register_op(
    name: str,
    solve: Callable[..., Any],
    cuda: Callable[..., Tensor] | None = None,
    fake: Callable[..., Any] | None = None,
) -> Any:
    """``solve`` as the op ``structgrad::<name>``, called on detached floating scores.

    ``solve`` returns a tensor or a tuple of tensors (the trace ops of
    :mod:`structgrad.solvers._torch_trace_ops`); ``cuda``: the op's CUDA
    kernel (default: ``solve``, through the host); ``fake``: its fake output
    (default: :func:`fake_like` of the scores).
    """
    op = torch.library.custom_op(f"structgrad::{name}", solve, mutates_args=())
    op.register_fake(fake or (lambda scores, *args: fake_like(scores)))
    if cuda is not None:
        op.register_kernel("cuda", cuda)

    def call(scores: Tensor, *args: Any) -> Any:
        # Solutions are 0/1 constants of the scores: no gradient flows through a
        # solver (as on the host path), and the op has no autograd formula to
        # refuse a backward with. Integer scores get the default dtype, as there.
        scores = scores.detach()
        if not scores.is_floating_point():
            scores = scores.to(torch.get_default_dtype())
        return op(scores, *args)

    return call


def _rank(scores: Tensor, core: int, name: str = "scores", **rules: Any) -> int:
    """The checks of the native kernels that read no values: dtype, then the solvers' shape rules.

    ``rules``: ``square``, ``min_size`` and ``dims`` of :func:`._validate.check_shape`.
    """
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {scores.dtype}")
    rules.setdefault("min_size", 1)
    check_shape(tuple(scores.shape), name, core_ndim=core, **rules)
    return scores.shape[-1]


def _cuda_top_k(scores: Tensor, k: int) -> Tensor:
    return _native.top_k(scores, check_int(k, "k", 0, _rank(scores, 1)))


def _cuda_max_spanning_tree(scores: Tensor, lengths: Tensor | None) -> Tensor:
    n = _rank(scores, 2, square=True, min_size=2)
    if lengths is not None:
        # The host's checks (broadcast to the batch, range): lengths are a few
        # integers, read once, so a bad one is a ValueError and not a wrong graph.
        valid = check_lengths(lengths, tuple(scores.shape[:-2]), n)
        lengths = torch.as_tensor(valid, device=scores.device)
    return _native.max_spanning_tree(scores, lengths)


def _cuda_linear_assignment(scores: Tensor) -> Tensor:
    _rank(scores, 2, square=True)
    return _native_assignment(scores)


def _cuda_grid_shortest_path(scores: Tensor) -> Tensor:
    _rank(scores, 2, "costs", dims="[..., H, W]")
    return _native.grid_shortest_path(scores)


# The CPU kernels: each solver's numpy path (its compiled kernel on the host).
def _top_k(scores: Tensor, k: int) -> Tensor:
    from ._topk import _on_host

    out: Tensor = _on_host(scores, k, False)
    return out


def _max_spanning_tree(scores: Tensor, lengths: Tensor | None) -> Tensor:
    from ._spanning_tree import _on_host

    out: Tensor = _on_host(scores, lengths, False)
    return out


def _max_arborescence(scores: Tensor, root: int, lengths: Tensor | None) -> Tensor:
    from ._arborescence import _on_host

    out: Tensor = _on_host(scores, root, lengths, False)
    return out


def _linear_assignment(scores: Tensor) -> Tensor:
    from ._matching import _on_host

    out: Tensor = _on_host(scores)
    return out


def _crossing_matching(scores: Tensor) -> Tensor:
    from ._matching import _crossing_on_host

    out: Tensor = _crossing_on_host(scores, False)
    return out


def _binary_tree(scores: Tensor, lengths: Tensor | None) -> Tensor:
    from ._binary_tree import _on_host

    out: Tensor = _on_host(scores, lengths, False)
    return out


def _grid_shortest_path(scores: Tensor) -> Tensor:
    from ._grid_path import _on_host

    out: Tensor = _on_host(scores)
    return out


top_k = register_op("top_k", _top_k, _cuda_top_k)
linear_assignment = register_op("linear_assignment", _linear_assignment, _cuda_linear_assignment)
grid_shortest_path = register_op(
    "grid_shortest_path", _grid_shortest_path, _cuda_grid_shortest_path
)
_tree_op = register_op("max_spanning_tree", _max_spanning_tree, _cuda_max_spanning_tree)
_arborescence_op = register_op("max_arborescence", _max_arborescence)
crossing_matching = register_op("crossing_matching", _crossing_matching)


def fake_square(scores: Tensor, *args: Any) -> Tensor:
    """Fake output ``[..., n, n]`` of ``[..., n]`` scores (binary_tree's adjacency)."""
    return fake_like(scores.unsqueeze(-1).expand(*scores.shape, scores.shape[-1]))


_binary_tree_op = register_op("binary_tree", _binary_tree, fake=fake_square)


def lengths_tensor(lengths: Any, like: Tensor) -> Tensor | None:
    # The ops take lengths as a tensor (or None); lists and arrays are converted.
    return None if lengths is None else torch.as_tensor(lengths, device=like.device)


def max_spanning_tree(scores: Tensor, lengths: Any) -> Tensor:
    """The op of :func:`structgrad.solvers.max_spanning_tree` (any lengths)."""
    out: Tensor = _tree_op(scores, lengths_tensor(lengths, scores))
    return out


def binary_tree(scores: Tensor, lengths: Any) -> Tensor:
    """The op of :func:`structgrad.solvers.binary_tree` (any lengths)."""
    out: Tensor = _binary_tree_op(scores, lengths_tensor(lengths, scores))
    return out


def max_arborescence(scores: Tensor, root: int, lengths: Any) -> Tensor:
    """The op of :func:`structgrad.solvers.max_arborescence` (any lengths)."""
    out: Tensor = _arborescence_op(scores, root, lengths_tensor(lengths, scores))
    return out
