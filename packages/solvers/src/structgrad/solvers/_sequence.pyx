"""Order-based solvers over sequences, batched (compiled kernels): top-k and the
divide-and-conquer binary tree.

Ties go to the lower index in both, like ``numpy.argmax`` and a stable sort.
"""

from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef inline bint _worse(double va, int64_t ia,
                        double vb, int64_t ib) noexcept nogil:
    """Whether ``a`` ranks below ``b``: a lower score, or a tie at a higher index."""
    return va < vb or (va == vb and ia > ib)


cdef inline void _sift_down(double *val, int64_t *idx, int64_t size,
                            int64_t j) noexcept nogil:
    """Restore the heap below ``j`` (the root holds the worst item kept)."""
    cdef int64_t child
    cdef double v = val[j]
    cdef int64_t i = idx[j]
    while True:
        child = 2 * j + 1
        if child >= size:
            break
        if child + 1 < size and _worse(val[child + 1], idx[child + 1],
                                       val[child], idx[child]):
            child += 1
        if not _worse(val[child], idx[child], v, i):
            break
        val[j] = val[child]
        idx[j] = idx[child]
        j = child
    val[j] = v
    idx[j] = i


def top_k(const floating[:, ::1] scores, int64_t k, floating[:, ::1] mask,
          int64_t[:, ::1] order):
    """Fill ``mask`` and ``order`` (the k best indices, best first) for every row.

    A heap of the k best seen so far, worst at the root: O(n log k) per row
    (an insertion into a sorted list was O(n k): about 3 s at n = 2e5, k = 1e5).
    """
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef Py_ssize_t g
    cdef int64_t i, j, filled, size
    cdef double v
    cdef int64_t *idx = <int64_t *> malloc((k + 1) * sizeof(int64_t))
    cdef double *val = <double *> malloc((k + 1) * sizeof(double))
    if idx == NULL or val == NULL:
        free(idx)
        free(val)
        raise MemoryError()
    with nogil:
        for g in range(batch):
            if k == 0:
                continue
            filled = 0
            for i in range(n):
                v = scores[g, i]
                if filled < k:
                    # sift up: the new item rises while it is worse than its parent
                    j = filled
                    filled += 1
                    while j > 0 and _worse(v, i, val[(j - 1) // 2], idx[(j - 1) // 2]):
                        val[j] = val[(j - 1) // 2]
                        idx[j] = idx[(j - 1) // 2]
                        j = (j - 1) // 2
                    val[j] = v
                    idx[j] = i
                elif v > val[0]:
                    # Scanning in index order, an equal score is never better:
                    # the lower index keeps its place among ties.
                    val[0] = v
                    idx[0] = i
                    _sift_down(val, idx, k, 0)
            # Pop the worst into the last free slot: the order comes out best first.
            size = k
            while size > 0:
                order[g, size - 1] = idx[0]
                mask[g, idx[0]] = 1
                size -= 1
                val[0] = val[size]
                idx[0] = idx[size]
                if size > 0:
                    _sift_down(val, idx, size, 0)
    free(idx)
    free(val)


def binary_tree(const floating[:, ::1] scores, const int64_t[::1] lengths,
                floating[:, :, ::1] adj, int64_t[:, :, ::1] spans, int64_t[:, ::1] depth):
    """Fill ``adj`` ([parent, child]), ``spans`` and ``depth`` for every sequence."""
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef Py_ssize_t g
    cdef int64_t top, lo, hi, par, d, i, m
    cdef double best
    # Explicit stack of (lo, hi, parent, depth) segments: no C recursion.
    cdef int64_t *stack = <int64_t *> malloc(4 * (n + 1) * sizeof(int64_t))
    if stack == NULL:
        raise MemoryError()
    with nogil:
        for g in range(batch):
            top = 0
            stack[0] = 0
            stack[1] = lengths[g]
            stack[2] = -1
            stack[3] = 0
            top = 1
            while top > 0:
                top -= 1
                lo = stack[4 * top]
                hi = stack[4 * top + 1]
                par = stack[4 * top + 2]
                d = stack[4 * top + 3]
                m = lo
                best = scores[g, lo]
                for i in range(lo + 1, hi):
                    if scores[g, i] > best:
                        best = scores[g, i]
                        m = i
                spans[g, m, 0] = lo
                spans[g, m, 1] = hi
                depth[g, m] = d
                if par >= 0:
                    adj[g, par, m] = 1
                if m + 1 < hi:
                    stack[4 * top] = m + 1
                    stack[4 * top + 1] = hi
                    stack[4 * top + 2] = m
                    stack[4 * top + 3] = d + 1
                    top += 1
                if lo < m:
                    stack[4 * top] = lo
                    stack[4 * top + 1] = m
                    stack[4 * top + 2] = m
                    stack[4 * top + 3] = d + 1
                    top += 1
    free(stack)
