"""Maximum spanning arborescence by Chu-Liu/Edmonds, batched (compiled kernel).

Iterative contraction on original vertex ids, O(n^3) per graph in the worst
case. Super-vertices get ids ``L, L+1, ...`` as they are formed; ``sup[x]`` is
the super-vertex that swallowed ``x`` (-1 while ``x`` is top-level). Reduced
scores are ``w[i, j] - off[j]``, where ``off[j]`` adds up the best in-scores of
every super-vertex containing ``j`` that has chosen its in-edge.
The trace records one step per super-vertex that chooses an in-edge: every
non-root vertex first, then each contracted cycle when it is formed.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef struct Work:
    double *off
    int64_t *top
    int64_t *sup
    int64_t *src
    int64_t *dst
    int64_t *asrc
    int64_t *color
    int64_t *path
    char *alive


cdef int64_t _find_cycle(Work *wk, int64_t count, int64_t root, int64_t *cycle) noexcept nogil:
    """Write a cycle of top-level super-vertices into ``cycle``; return its length (0: none)."""
    cdef int64_t x, y, walk, length, k, m
    for x in range(count):
        wk.color[x] = -1
    for x in range(count):
        if not wk.alive[x] or x == root or wk.color[x] != -1:
            continue
        walk = x
        length = 0
        y = x
        # Follow chosen in-edges backwards until the root, an old walk, or this walk.
        while y != root and wk.color[y] == -1:
            wk.color[y] = walk
            wk.path[length] = y
            length += 1
            y = wk.top[wk.src[y]]
        if y != root and wk.color[y] == walk:
            m = 0
            for k in range(length):
                if wk.path[k] == y:
                    m = k
                    break
            for k in range(m, length):
                cycle[k - m] = wk.path[k]
            return length - m
    return 0


cdef void _best_in_edge(const double[:, ::1] w, Work *wk, int64_t s,
                        int64_t size) noexcept nogil:
    """Choose the in-edge of top-level super-vertex ``s`` with the largest reduced score.

    Ties go to the lowest (source, target) in row-major order.
    """
    cdef int64_t i, j, bi = -1, bj = -1
    cdef double r, best = 0.0
    for i in range(size):
        if wk.top[i] == s:
            continue
        for j in range(size):
            if wk.top[j] != s:
                continue
            r = w[i, j] - wk.off[j]
            if bi < 0 or r > best:
                best = r
                bi = i
                bj = j
    wk.src[s] = bi
    wk.dst[s] = bj
    for j in range(size):
        if wk.top[j] == s:
            wk.off[j] += best


def edmonds(const double[:, :, ::1] scores, const int64_t[::1] lengths, int64_t root,
            double[:, :, ::1] adj, int64_t[:, :, ::1] edges, unsigned char[:, :, ::1] members,
            int64_t[::1] n_steps, bint record_trace):
    """Fill ``adj`` (and the trace arrays if ``record_trace``) for every graph."""
    cdef Py_ssize_t batch = scores.shape[0]
    cdef int64_t n = scores.shape[1]
    cdef int64_t cap = 2 * n
    cdef Work wk
    cdef int64_t *cycle = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.off = <double *> malloc(n * sizeof(double))
    wk.top = <int64_t *> malloc(n * sizeof(int64_t))
    wk.sup = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.src = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.dst = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.asrc = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.color = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.path = <int64_t *> malloc(cap * sizeof(int64_t))
    wk.alive = <char *> malloc(cap * sizeof(char))
    cdef Py_ssize_t g
    cdef int64_t size, count, v, x, c, k, length, step, j
    if (cycle == NULL or wk.off == NULL or wk.top == NULL or wk.sup == NULL or wk.src == NULL
            or wk.dst == NULL or wk.asrc == NULL or wk.color == NULL or wk.path == NULL
            or wk.alive == NULL):
        _free(&wk, cycle)
        raise MemoryError()
    with nogil:
        for g in range(batch):
            size = lengths[g]
            count = size
            step = 0
            for v in range(size):
                wk.off[v] = 0.0
                wk.top[v] = v
                wk.sup[v] = -1
                wk.alive[v] = 1
                wk.src[v] = -1
            # Every non-root vertex picks its best in-edge.
            for v in range(size):
                if v == root:
                    continue
                _best_in_edge(scores[g], &wk, v, size)
                if record_trace:
                    _record(&wk, edges, members, g, step, v, size)
                step += 1
            # Contract cycles until the chosen edges form an arborescence.
            while True:
                length = _find_cycle(&wk, count, root, cycle)
                if length == 0:
                    break
                x = count
                count += 1
                wk.alive[x] = 1
                wk.sup[x] = -1
                for k in range(length):
                    wk.sup[cycle[k]] = x
                    wk.alive[cycle[k]] = 0
                for v in range(size):
                    if wk.sup[wk.top[v]] == x:
                        wk.top[v] = x
                _best_in_edge(scores[g], &wk, x, size)
                if record_trace:
                    _record(&wk, edges, members, g, step, x, size)
                step += 1
            # Expand: the newest super-vertices first hand their in-edge down.
            for x in range(count):
                wk.asrc[x] = wk.src[x]
                wk.color[x] = wk.dst[x]  # reuse: assigned target
            for x in range(count - 1, size - 1, -1):
                j = wk.color[x]
                # The child of x that contains j receives x's in-edge.
                c = j
                while wk.sup[c] != x:
                    c = wk.sup[c]
                wk.asrc[c] = wk.asrc[x]
                wk.color[c] = j
            for v in range(size):
                if v != root:
                    adj[g, wk.asrc[v], v] = 1
            n_steps[g] = step
    _free(&wk, cycle)


cdef void _record(Work *wk, int64_t[:, :, ::1] edges, unsigned char[:, :, ::1] members,
                  Py_ssize_t g, int64_t step, int64_t s, int64_t size) noexcept nogil:
    cdef int64_t v
    edges[g, step, 0] = wk.src[s]
    edges[g, step, 1] = wk.dst[s]
    for v in range(size):
        members[g, step, v] = wk.top[v] == s


cdef void _free(Work *wk, int64_t *cycle) noexcept nogil:
    free(cycle)
    free(wk.off)
    free(wk.top)
    free(wk.sup)
    free(wk.src)
    free(wk.dst)
    free(wk.asrc)
    free(wk.color)
    free(wk.path)
    free(wk.alive)
