"""Top-k (the MAP of the k-subset structure) with its selection order, batched."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np
from numpy.typing import NDArray

from ._backend import kernel
from ._bridge import _KERNEL_DTYPES, traced_op
from ._validate import batched, check_int, check_values, refuse_float

__all__ = ["TopKTrace", "top_k", "top_k_rows"]


class TopKTrace(NamedTuple):
    """Selection order of the recursive arg-top-k.

    Attributes:
        order: ``[..., k]`` int64, the selected indices in decreasing score order.
        size: ``[...]`` int64, the number ``n`` of items the order was drawn from
            (``None`` when unknown), so that a trace is not read against other scores.
    """

    order: Any
    size: Any = None


@overload
def top_k(scores: Any, k: int, *, return_trace: Literal[False] = ...) -> Any: ...
@overload
def top_k(scores: Any, k: int, *, return_trace: Literal[True]) -> tuple[Any, TopKTrace]: ...
def top_k(scores: Any, k: int, *, return_trace: bool = False) -> Any | tuple[Any, TopKTrace]:
    """The ``k`` largest entries of each row as a 0/1 mask.

    Ties go to the lower index (a stable sort); ``-inf`` entries are chosen only
    when fewer than ``k`` entries are finite.

    Args:
        scores: ``[..., n]`` scores, ``n >= 1`` (numpy or torch).
        k: subset size in ``[0, n]``.
        return_trace: also return the :class:`TopKTrace`.

    Returns:
        The mask ``[..., n]`` with ``k`` ones per row in the input's floating
        dtype (and the trace, if asked).

    Raises:
        ValueError: on NaN or +inf scores, a scalar input, or ``k`` outside ``[0, n]``.
            The values are not read on a CUDA tensor (its device twin: no host
            synchronisation), where NaN or +inf give an unspecified 0/1 output.

    References:
        Struminsky et al., NeurIPS 2021, https://arxiv.org/abs/2110.15072
        (top-k as a recursive Gumbel-max algorithm; Plackett-Luce order).
    """
    op = traced_op(scores, "top_k_trace" if return_trace else "top_k")
    if op is not None:  # (the op's schema takes an int: a float k failed inside the trace)
        return op(scores, refuse_float(k, "k"))
    return _on_host(scores, k, return_trace)


def top_k_rows(rows: Any, k: int) -> Any:
    """The top-``k`` mask of each row of a C-contiguous float32/float64 ``[B, n]`` array.

    The lean entry of :func:`top_k` for batched callers that already hold such a
    numpy array (the k-subset layers of structgrad.estimators): the scores are
    still checked for NaN and +inf, with :func:`top_k`'s errors, but the
    conversions between array kinds and dtypes are not done.

    Args:
        rows: ``[B, n]`` C-contiguous numpy array of float32 or float64 scores.
        k: subset size in ``[0, n]``.

    Returns:
        The ``[B, n]`` 0/1 mask in ``rows``' dtype (a new array).

    Raises:
        ValueError: on NaN or +inf scores, a wrong array, or ``k`` outside ``[0, n]``.
    """
    if not isinstance(rows, np.ndarray):  # (a tensor reached numpy's conversion)
        raise TypeError(f"rows must be a numpy array, got {type(rows).__name__}")
    if not (rows.ndim == 2 and rows.dtype in _KERNEL_DTYPES and rows.flags.c_contiguous):
        raise ValueError("rows must be a C-contiguous float32/float64 numpy array [B, n]")
    check_values(rows, "scores")
    return _solve(rows, check_int(k, "k", 0, rows.shape[1]))[0]


def _solve(flat: NDArray[np.floating[Any]], k: int) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """The kernel on validated ``[B, n]`` scores: the 0/1 mask and the selection order."""
    mask = np.zeros(flat.shape, flat.dtype)
    order = np.empty((flat.shape[0], k), dtype=np.int64)
    kernel("_sequence", "_sequence_ref").top_k(flat, k, mask, order)
    return mask, order


def _on_host(scores: Any, k: int, return_trace: bool) -> Any:
    """The numpy path of :func:`top_k` (torch tensors convert through the host)."""
    inp = batched(scores, "scores", core_ndim=1, min_size=1)
    n = inp.flat.shape[1]
    k = check_int(k, "k", 0, n)
    mask, order = _solve(inp.flat, k)
    solution = inp.bridge.solution(mask.reshape((*inp.batch_shape, n)))
    if not return_trace:
        return solution
    size = np.full(inp.batch_shape, n, dtype=np.int64)
    return solution, TopKTrace(
        inp.bridge.index(order.reshape((*inp.batch_shape, k))), inp.bridge.index(size)
    )
