"""Batched inverse of small dense matrices (compiled kernel).

LAPACK inverts one matrix per call; for a batch of small matrices (n of a few
tens) the per-call work dominates, and a plain loop over the batch inside one
``nogil`` kernel is several times faster at n = 10.
"""

from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef inline floating _magnitude(floating x) noexcept nogil:
    return -x if x < 0 else x


cdef int64_t _invert(floating *a, Py_ssize_t n, Py_ssize_t *swap,
                     floating *pivot_row) noexcept nogil:
    """Gauss-Jordan with partial pivoting on the row-major ``n x n`` matrix at ``a``, in place.

    Returns 0, or ``k + 1`` when column ``k`` has no nonzero pivot (``a`` is
    then left part-way). Any values are memory-safe: NaN only propagates.
    """
    cdef Py_ssize_t i, j, k, p
    cdef floating best, v, f, inv_pivot, t
    cdef floating *row
    for k in range(n):
        # Partial pivoting: the first largest |a[i, k]| over i >= k.
        p = k
        best = _magnitude(a[k * n + k])
        for i in range(k + 1, n):
            v = _magnitude(a[i * n + k])
            if v > best:
                best = v
                p = i
        swap[k] = p
        if best == 0:
            return k + 1
        if p != k:
            for j in range(n):
                t = a[k * n + j]
                a[k * n + j] = a[p * n + j]
                a[p * n + j] = t
        # Column k of the identity lives in column k of a: the pivot entry is
        # set to 1 before scaling, the others to 0 before elimination.
        inv_pivot = 1 / a[k * n + k]
        a[k * n + k] = 1
        for j in range(n):
            a[k * n + j] *= inv_pivot
            pivot_row[j] = a[k * n + j]  # a separate buffer: the update below vectorises
        for i in range(n):
            row = a + i * n
            f = row[k]
            if i == k or f == 0:
                continue
            row[k] = 0
            for j in range(n):
                row[j] -= f * pivot_row[j]
    # Row swaps of the input are column swaps of the inverse, undone in reverse.
    for k in range(n - 1, -1, -1):
        p = swap[k]
        if p != k:
            for i in range(n):
                t = a[i * n + k]
                a[i * n + k] = a[i * n + p]
                a[i * n + p] = t
    return 0


def inverse(floating[:, :, ::1] matrices, int64_t[::1] info):
    """Invert every ``[n, n]`` matrix of ``matrices`` ``[B, n, n]`` in place; fill ``info``."""
    cdef Py_ssize_t b, n = matrices.shape[1]
    # One block for both work arrays: the row swaps, then the pivot row (its
    # offset, a multiple of 8 bytes, keeps it aligned).
    cdef char *block = <char *> malloc((n + 1) * (sizeof(Py_ssize_t) + sizeof(floating)))
    if block == NULL:
        raise MemoryError()
    cdef Py_ssize_t *swap = <Py_ssize_t *> block
    cdef floating *pivot_row = <floating *> (block + (n + 1) * sizeof(Py_ssize_t))
    if n > 0:
        with nogil:
            for b in range(matrices.shape[0]):
                info[b] = _invert(&matrices[b, 0, 0], n, swap, pivot_row)
    free(block)
