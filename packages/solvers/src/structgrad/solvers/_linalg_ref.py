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
        # The kernel's pivot: the first strictly largest |a[i, k]| from i = k on,
        # so a NaN never wins, unless it sits at (k, k), where nothing beats it.
        size = np.abs(a[:, k:, k])
        stays = np.isnan(size[:, 0])
        size = np.where(np.isnan(size), -np.inf, size)
        p = k + np.where(stays, 0, np.argmax(size, axis=1))
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
        # Rows with a zero factor are left alone, as the kernel skips them
        # (0 * inf would be NaN once 1 / pivot has overflowed).
        update = factors[:, :, None] * a[:, k : k + 1, :]
        update[factors == 0] = 0
        a -= update
    for k in range(n - 1, -1, -1):
        p = swaps[:, k]
        col = a[:, :, k].copy()
        a[:, :, k] = a[rows, :, p]
        a[rows, :, p] = col
