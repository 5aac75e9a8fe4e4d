"""Shortest top-left to bottom-right path on grids of vertex costs (compiled kernel).

Dijkstra with a binary heap keyed by (distance, cell index): the keys are
unique, so the pop order, and hence the path, is fully determined.
"""

from cython cimport floating
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cdef int64_t[8] DI = [-1, -1, -1, 0, 0, 1, 1, 1]
cdef int64_t[8] DJ = [-1, 0, 1, -1, 1, -1, 0, 1]


cdef struct Entry:
    double d        # distance
    int64_t i       # cell index (breaks ties: the keys are unique)


cdef inline bint _less(Entry a, Entry b) noexcept nogil:
    return a.d < b.d or (a.d == b.d and a.i < b.i)


cdef inline void _push(Entry *heap, int64_t *size, Entry e) noexcept nogil:
    cdef int64_t k = size[0], parent
    size[0] += 1
    while k > 0:
        parent = (k - 1) // 2
        if not _less(e, heap[parent]):
            break
        heap[k] = heap[parent]
        k = parent
    heap[k] = e


cdef inline void _pop(Entry *heap, int64_t *size) noexcept nogil:
    # Remove the root; sift the last element down from the top.
    cdef int64_t k = 0, child, last
    cdef Entry e
    size[0] -= 1
    last = size[0]
    e = heap[last]
    while True:
        child = 2 * k + 1
        if child >= last:
            break
        if child + 1 < last and _less(heap[child + 1], heap[child]):
            child += 1
        if not _less(heap[child], e):
            break
        heap[k] = heap[child]
        k = child
    heap[k] = e


def dijkstra(const floating[:, :, ::1] costs, floating[:, :, ::1] mask):
    """Fill ``mask`` with the cheapest 8-neighbour path of every grid."""
    cdef Py_ssize_t batch = costs.shape[0]
    cdef int64_t h = costs.shape[1], w = costs.shape[2], cells = h * w
    # Every push follows a strict improvement: at most 8 per settled cell, plus the start.
    cdef int64_t cap = 8 * cells + 1
    cdef double *dist = <double *> malloc(cells * sizeof(double))
    cdef int64_t *pred = <int64_t *> malloc(cells * sizeof(int64_t))
    cdef char *done = <char *> malloc(cells * sizeof(char))
    cdef Entry *heap = <Entry *> malloc(cap * sizeof(Entry))
    cdef Py_ssize_t g
    cdef int64_t size, cur, r, c, k, nr, nc, nb, target = cells - 1
    cdef double d, nd
    try:
        if dist == NULL or pred == NULL or done == NULL or heap == NULL:
            raise MemoryError()
        with nogil:
            for g in range(batch):
                for cur in range(cells):
                    dist[cur] = INFINITY
                    pred[cur] = -1
                    done[cur] = 0
                dist[0] = costs[g, 0, 0]
                size = 0
                _push(heap, &size, Entry(dist[0], 0))
                while size > 0:
                    d = heap[0].d
                    cur = heap[0].i
                    _pop(heap, &size)
                    if done[cur]:
                        continue
                    done[cur] = 1
                    if cur == target:
                        break
                    r = cur // w
                    c = cur - r * w
                    for k in range(8):
                        nr = r + DI[k]
                        nc = c + DJ[k]
                        if nr < 0 or nr >= h or nc < 0 or nc >= w:
                            continue
                        nb = nr * w + nc
                        if done[nb]:
                            continue
                        nd = d + <double> costs[g, nr, nc]
                        if nd < dist[nb]:
                            dist[nb] = nd
                            pred[nb] = cur
                            _push(heap, &size, Entry(nd, nb))
                cur = target
                while cur >= 0:
                    r = cur // w
                    mask[g, r, cur - r * w] = 1
                    cur = pred[cur]
    finally:
        free(dist)
        free(pred)
        free(done)
        free(heap)
