"""Divide-and-conquer binary tree over a sequence (recursive argmax split), batched."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from ._backend import kernel
from ._bridge import traced_op
from ._validate import batched, check_lengths

__all__ = ["BinaryTreeTrace", "binary_tree"]


class BinaryTreeTrace(NamedTuple):
    """Split trace of the divide-and-conquer tree.

    Attributes:
        spans: ``[..., n, 2]`` int64, element ``i`` was the argmax of the half-open
            subarray ``[spans[i, 0], spans[i, 1])``; padded elements (``i >= length``)
            get ``(i, i + 1)`` so that a log-probability sum gives them ``log 1 = 0``.
        depth: ``[..., n]`` int64, depth of each element (root 0, padded ``-1``).
    """

    spans: Any
    depth: Any


@overload
def binary_tree(scores: Any, *, lengths: Any = None, return_trace: Literal[False] = ...) -> Any: ...
@overload
def binary_tree(
    scores: Any, *, lengths: Any = None, return_trace: Literal[True]
) -> tuple[Any, BinaryTreeTrace]: ...
def binary_tree(
    scores: Any, *, lengths: Any = None, return_trace: bool = False
) -> Any | tuple[Any, BinaryTreeTrace]:
    """Binary tree built by splitting a sequence at its argmax, recursively.

    The root is the argmax of the whole sequence (ties to the lowest index); its
    left subtree is built from the elements before it and its right subtree from
    the elements after it. The in-order traversal of the tree is therefore the
    sequence itself (a Cartesian tree).

    Args:
        scores: ``[..., n]`` scores, ``n >= 1`` (numpy or torch).
        lengths: optional ``[...]`` integer sequence lengths in ``[1, n]``; entries
            beyond a length are not part of the tree.
        return_trace: also return the :class:`BinaryTreeTrace`.

    Returns:
        The adjacency ``[..., n, n]`` with ``[parent, child] = 1`` (left child <
        parent < right child) in the input's floating dtype (and the trace).

    Raises:
        ValueError: on NaN or +inf scores, a scalar input or bad lengths.

    References:
        Struminsky et al., NeurIPS 2021, https://arxiv.org/abs/2110.15072 (§3.2).
    """
    op = traced_op(scores, "binary_tree_trace" if return_trace else "binary_tree")
    if op is not None:
        return op(scores, lengths)
    return _on_host(scores, lengths, return_trace)


def _on_host(scores: Any, lengths: Any, return_trace: bool) -> Any:
    """The numpy path of :func:`binary_tree` (torch tensors convert through the host)."""
    inp = batched(scores, "scores", core_ndim=1, min_size=1)
    flat = inp.flat
    size, n = flat.shape
    lens = check_lengths(lengths, inp.batch_shape, n)
    adj = np.zeros((size, n, n), dtype=flat.dtype)
    idx = np.arange(n, dtype=np.int64)
    spans = np.empty((size, n, 2), dtype=np.int64)
    spans[...] = np.stack([idx, idx + 1], -1)  # padded elements keep (i, i + 1)
    depth = np.full((size, n), -1, dtype=np.int64)
    kernel("_sequence", "_sequence_ref").binary_tree(flat, lens, adj, spans, depth)
    shape = inp.batch_shape
    solution = inp.bridge.solution(adj.reshape((*shape, n, n)))
    if not return_trace:
        return solution
    trace = BinaryTreeTrace(
        inp.bridge.index(spans.reshape((*shape, n, 2))),
        inp.bridge.index(depth.reshape((*shape, n))),
    )
    return solution, trace
