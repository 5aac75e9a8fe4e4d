"""Matchings of square score matrices, batched (compiled kernels).

``assignment``: maximum-weight perfect matching by the O(n^3) shortest
augmenting path method with row/column potentials (Kuhn-Munkres in the
Jonker-Volgenant form), on costs ``-scores`` in float64.
``crossing``: the greedy "crossing" matching of the recursive Gumbel-max trick.
"""

from cython cimport floating
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


def assignment(const double[:, :, ::1] scores, floating[:, :, ::1] perm):
    """Fill ``perm`` with a maximum-weight permutation matrix for every matrix."""
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    # 1-based arrays; index 0 is the virtual column of the augmenting tree.
    cdef double *u = <double *> malloc((n + 1) * sizeof(double))
    cdef double *v = <double *> malloc((n + 1) * sizeof(double))
    cdef double *minv = <double *> malloc((n + 1) * sizeof(double))
    cdef int64_t *p = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    cdef int64_t *way = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    cdef char *used = <char *> malloc((n + 1) * sizeof(char))
    cdef char *done = <char *> malloc((n + 1) * sizeof(char))
    cdef Py_ssize_t g
    cdef int64_t i, j, i0, j0, j1
    cdef double delta, cur, ui0
    cdef bint better
    cdef const double *row
    if (u == NULL or v == NULL or minv == NULL or p == NULL or way == NULL or used == NULL
            or done == NULL):
        free(u)
        free(v)
        free(minv)
        free(p)
        free(way)
        free(used)
        free(done)
        raise MemoryError()
    with nogil:
        for g in range(batch):
            for j in range(n + 1):
                u[j] = 0.0
                v[j] = 0.0
                p[j] = 0
                way[j] = 0
            # Row reduction (u_i = min_j c_ij, v = 0 keeps the duals feasible) and a
            # greedy start: rows whose cheapest column is still free take it (tight).
            for i in range(1, n + 1):
                row = &scores[g, i - 1, 0]
                j1 = 1
                for j in range(2, n + 1):
                    if -row[j - 1] < -row[j1 - 1]:
                        j1 = j
                u[i] = -row[j1 - 1]
                done[i] = p[j1] == 0
                if done[i]:
                    p[j1] = i
            for i in range(1, n + 1):
                if done[i]:
                    continue
                p[0] = i
                j0 = 0
                for j in range(n + 1):
                    minv[j] = INFINITY
                    used[j] = 0
                while True:
                    used[j0] = 1
                    i0 = p[j0]
                    row = &scores[g, i0 - 1, 0]
                    ui0 = u[i0]
                    delta = INFINITY
                    j1 = 0
                    for j in range(1, n + 1):
                        if not used[j]:
                            # Reduced cost of row i0 to column j (cost = -score).
                            # Conditional expressions, not branches: the outcomes
                            # are data-dependent and mispredict (gcc emits cmov).
                            cur = -row[j - 1] - ui0 - v[j]
                            better = cur < minv[j]
                            minv[j] = cur if better else minv[j]
                            way[j] = j0 if better else way[j]
                            better = minv[j] < delta
                            delta = minv[j] if better else delta
                            j1 = j if better else j1
                    for j in range(n + 1):
                        if used[j]:
                            u[p[j]] += delta
                            v[j] -= delta
                        else:
                            minv[j] -= delta
                    j0 = j1
                    if p[j0] == 0:
                        break
                # Augment along the alternating path back to the virtual column.
                while j0 != 0:
                    j1 = way[j0]
                    p[j0] = p[j1]
                    j0 = j1
            for j in range(1, n + 1):
                perm[g, p[j] - 1, j - 1] = 1
    free(u)
    free(v)
    free(minv)
    free(p)
    free(way)
    free(used)
    free(done)


def crossing(const floating[:, :, ::1] scores, floating[:, :, ::1] perm,
             int64_t[:, :, ::1] edges):
    """Greedy matching: repeatedly take the global argmax and cross out its row and column.

    Ties go to the lowest row-major index among the available entries.
    """
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef int64_t *rowbest = <int64_t *> malloc(n * sizeof(int64_t))
    cdef char *row_free = <char *> malloc(n * sizeof(char))
    cdef char *col_free = <char *> malloc(n * sizeof(char))
    cdef Py_ssize_t g
    cdef int64_t t, i, r, c
    if rowbest == NULL or row_free == NULL or col_free == NULL:
        free(rowbest)
        free(row_free)
        free(col_free)
        raise MemoryError()
    with nogil:
        for g in range(batch):
            for i in range(n):
                row_free[i] = 1
                col_free[i] = 1
            for i in range(n):
                rowbest[i] = _row_argmax(scores, g, i, col_free, n)
            for t in range(n):
                r = -1
                for i in range(n):
                    # Strict '>' keeps the lowest row among equal maxima.
                    if row_free[i] and (
                            r < 0 or scores[g, i, rowbest[i]] > scores[g, r, rowbest[r]]):
                        r = i
                c = rowbest[r]
                perm[g, r, c] = 1
                edges[g, t, 0] = r
                edges[g, t, 1] = c
                row_free[r] = 0
                col_free[c] = 0
                if t + 1 < n:
                    for i in range(n):
                        if row_free[i] and rowbest[i] == c:
                            rowbest[i] = _row_argmax(scores, g, i, col_free, n)
    free(rowbest)
    free(row_free)
    free(col_free)


cdef inline int64_t _row_argmax(const floating[:, :, ::1] s, Py_ssize_t g, int64_t i,
                                const char *col_free, int64_t n) noexcept nogil:
    # First maximum among the free columns of row i (-inf entries included).
    cdef int64_t j, best = -1
    for j in range(n):
        if col_free[j] and (best < 0 or s[g, i, j] > s[g, i, best]):
            best = j
    return best
