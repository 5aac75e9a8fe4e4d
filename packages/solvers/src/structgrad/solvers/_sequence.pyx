"""Order-based solvers over sequences, batched (compiled kernels): top-k and the
divide-and-conquer binary tree.

Ties go to the lower index in both, like ``numpy.argmax`` and a stable sort.
"""

from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


def top_k(const floating[:, ::1] scores, int64_t k, floating[:, ::1] mask,
          int64_t[:, ::1] order):
    """Fill ``mask`` and ``order`` (the k best indices, best first) for every row."""
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef Py_ssize_t g
    cdef int64_t i, j, filled
    cdef double v
    cdef int64_t *best = <int64_t *> malloc((k + 1) * sizeof(int64_t))
    cdef double *val = <double *> malloc((k + 1) * sizeof(double))
    if best == NULL or val == NULL:
        free(best)
        free(val)
        raise MemoryError()
    with nogil:
        for g in range(batch):
            if k == 0:
                continue
            # Insertion into a sorted list of the k best seen so far. Scanning in
            # index order and inserting only on a strictly larger score keeps
            # the lower index first among equal scores.
            filled = 0
            for i in range(n):
                v = scores[g, i]
                if filled == k and not (v > val[k - 1]):
                    continue
                j = filled if filled < k else k - 1
                while j > 0 and v > val[j - 1]:
                    val[j] = val[j - 1]
                    best[j] = best[j - 1]
                    j -= 1
                val[j] = v
                best[j] = i
                if filled < k:
                    filled += 1
            for j in range(k):
                order[g, j] = best[j]
                mask[g, best[j]] = 1
    free(best)
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
