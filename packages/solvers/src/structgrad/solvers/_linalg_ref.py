"""Pure-Python twin of ``_linalg.pyx`` (same interface, same pivots, same results)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def inverse(matrices: NDArray[np.floating[Any]], info: NDArray[np.int64]) -> None:
    """Invert every ``[n, n]`` matrix of ``matrices`` ``[B, n, n]`` in place; fill ``info``.

    Gauss-Jordan with partial pivoting, vectorised over the batch. A matrix
    without a nonzero pivot in column ``k`` gets ``info = k + 1`` and is left
    with unspecified values (the kernel stops there; here it runs on).
    """
    batch, n = matrices.shape[0], matrices.shape[1]
    info[:] = 0
    if n == 0 or batch == 0:
        return
    with np.errstate(all="ignore"):  # as in C: overflow gives inf, silently
        _gauss_jordan(matrices, info)


def _gauss_jordan(a: NDArray[np.floating[Any]], info: NDArray[np.int64]) -> None:
    batch, n = a.shape[0], a.shape[1]
    rows = np.arange(batch)
    swaps = np.empty((batch, n), dtype=np.int64)
    for k in range(n):
        p = k + np.argmax(np.abs(a[:, k:, k]), axis=1)  # the first largest, as the kernel
        swaps[:, k] = p
        pivot = a[rows, p, k]
        bad = ~(np.abs(pivot) > 0) & ~np.isnan(pivot)
        info[(info == 0) & bad] = k + 1
        top = a[:, k, :].copy()
        a[:, k, :] = a[rows, p, :]
        a[rows, p, :] = top
        inv_pivot = 1 / np.where(bad, 1, a[:, k, k])
        a[:, k, k] = 1
        a[:, k, :] *= inv_pivot[:, None]
        factors = a[:, :, k].copy()
        factors[:, k] = 0
        a[:, :, k] = np.where(np.arange(n) == k, a[:, :, k], 0)
        a -= factors[:, :, None] * a[:, k : k + 1, :]
    for k in range(n - 1, -1, -1):
        p = swaps[:, k]
        col = a[:, :, k].copy()
        a[:, :, k] = a[rows, :, p]
        a[rows, :, p] = col
