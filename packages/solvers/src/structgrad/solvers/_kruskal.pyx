"""Maximum spanning tree of complete undirected graphs, batched (compiled kernel).

Edges are totally ordered by (score descending, then row-major index of the
upper-triangle pair ascending). Under a strict total order the maximum
spanning tree is unique, so the dense O(n^2) Prim below returns exactly the
tree Kruskal would; the Kruskal trace is then the tree edges sorted by that
order, replayed through a relabelling union of components.
"""

from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef inline bint _before(double a, int64_t ia, double b, int64_t ib) noexcept nogil:
    # Strict total order of edges: larger score first, then smaller pair index.
    return a > b or (a == b and ia < ib)


cdef inline double _score(const floating[:, :, ::1] s, Py_ssize_t g, int64_t u,
                          int64_t v) noexcept nogil:
    # Only the strict upper triangle is read.
    if u < v:
        return s[g, u, v]
    return s[g, v, u]


def kruskal(const floating[:, :, ::1] scores, const int64_t[::1] lengths,
            floating[:, :, ::1] adj, int64_t[:, :, ::1] edges,
            int64_t[:, :, ::1] components, bint record_trace):
    """Fill ``adj`` (and ``edges``/``components`` if ``record_trace``) for every graph."""
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef double *key = <double *> malloc(n * sizeof(double))
    cdef int64_t *kidx = <int64_t *> malloc(n * sizeof(int64_t))
    cdef int64_t *parent = <int64_t *> malloc(n * sizeof(int64_t))
    cdef char *in_tree = <char *> malloc(n * sizeof(char))
    cdef double *wt = <double *> malloc(n * sizeof(double))
    cdef int64_t *label = <int64_t *> malloc(n * sizeof(int64_t))
    cdef int64_t *eu = <int64_t *> malloc(n * sizeof(int64_t))
    cdef int64_t *ev = <int64_t *> malloc(n * sizeof(int64_t))
    cdef int64_t *eidx = <int64_t *> malloc(n * sizeof(int64_t))
    cdef Py_ssize_t g
    cdef int64_t L, i, t, u, v, best, a, b, lo, hi, tu, tv, ti
    cdef double s, tw
    try:
        if (key == NULL or kidx == NULL or parent == NULL or in_tree == NULL or wt == NULL
                or label == NULL or eu == NULL or ev == NULL or eidx == NULL):
            raise MemoryError()
        with nogil:
            for g in range(batch):
                L = lengths[g]
                # Dense Prim from vertex 0.
                for v in range(L):
                    in_tree[v] = 0
                    key[v] = _score(scores, g, 0, v)
                    kidx[v] = v  # pair (0, v) has row-major index 0 * n + v
                    parent[v] = 0
                in_tree[0] = 1
                for t in range(L - 1):
                    best = -1
                    for v in range(1, L):
                        if not in_tree[v] and (
                                best < 0 or _before(key[v], kidx[v], key[best], kidx[best])):
                            best = v
                    in_tree[best] = 1
                    u = parent[best]
                    adj[g, u, best] = 1
                    adj[g, best, u] = 1
                    lo = u if u < best else best
                    hi = best if u < best else u
                    eu[t] = lo
                    ev[t] = hi
                    eidx[t] = lo * n + hi
                    wt[t] = key[best]
                    for v in range(1, L):
                        if not in_tree[v]:
                            s = _score(scores, g, best, v)
                            i = (best * n + v) if best < v else (v * n + best)
                            if _before(s, i, key[v], kidx[v]):
                                key[v] = s
                                kidx[v] = i
                                parent[v] = best
                if not record_trace:
                    continue
                # Kruskal adds the tree edges in the total order: insertion sort them.
                for t in range(1, L - 1):
                    tw = wt[t]
                    ti = eidx[t]
                    tu = eu[t]
                    tv = ev[t]
                    i = t - 1
                    while i >= 0 and _before(tw, ti, wt[i], eidx[i]):
                        wt[i + 1] = wt[i]
                        eidx[i + 1] = eidx[i]
                        eu[i + 1] = eu[i]
                        ev[i + 1] = ev[i]
                        i -= 1
                    wt[i + 1] = tw
                    eidx[i + 1] = ti
                    eu[i + 1] = tu
                    ev[i + 1] = tv
                for v in range(L):
                    label[v] = v
                for t in range(L - 1):
                    edges[g, t, 0] = eu[t]
                    edges[g, t, 1] = ev[t]
                    for v in range(L):
                        components[g, t, v] = label[v]
                    # Merge: the component keeps the smaller of the two labels.
                    a = label[eu[t]]
                    b = label[ev[t]]
                    lo = a if a < b else b
                    hi = b if a < b else a
                    for v in range(L):
                        if label[v] == hi:
                            label[v] = lo
    finally:
        free(key)
        free(kidx)
        free(parent)
        free(in_tree)
        free(wt)
        free(label)
        free(eu)
        free(ev)
        free(eidx)
