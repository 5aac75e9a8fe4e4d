"""Pure-Python twins of ``_sequence.pyx`` (same interface, same results)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def top_k(
    scores: NDArray[np.floating[Any]],
    k: int,
    mask: NDArray[np.floating[Any]],
    order: NDArray[np.int64],
) -> None:
    """Fill ``mask`` and ``order`` (the k best indices, best first) for every row."""
    for g in range(scores.shape[0]):
        # A stable sort of the negated scores puts the lower index first among ties.
        best = np.argsort(-scores[g].astype(np.float64), kind="stable")[:k]
        order[g] = best
        mask[g, best] = 1


def binary_tree(
    scores: NDArray[np.floating[Any]],
    lengths: NDArray[np.int64],
    adj: NDArray[np.floating[Any]],
    spans: NDArray[np.int64],
    depth: NDArray[np.int64],
) -> None:
    """Fill ``adj`` ([parent, child]), ``spans`` and ``depth`` for every sequence."""
    for g in range(scores.shape[0]):
        todo = [(0, int(lengths[g]), -1, 0)]
        while todo:
            lo, hi, parent, d = todo.pop()
            m = lo + int(np.argmax(scores[g, lo:hi]))
            spans[g, m] = (lo, hi)
            depth[g, m] = d
            if parent >= 0:
                adj[g, parent, m] = 1
            todo.extend(
                seg for seg in ((m + 1, hi, m, d + 1), (lo, m, m, d + 1)) if seg[0] < seg[1]
            )
