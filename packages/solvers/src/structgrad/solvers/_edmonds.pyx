"""Chu-Liu/Edmonds maximum spanning arborescence with its contraction trace (compiled kernel).

The pure-Python twin is ``_edmonds_ref.py``; both follow the same algorithm step by step
and give bit-identical results. The public wrapper is ``_arborescence.max_arborescence``.

Weights are pairs ``(c, v)`` compared lexicographically: ``c = -1`` for a ``-inf`` score
(``v = 0``) and ``c = 0`` for a finite one (``v`` = the score in float64). Pair arithmetic
is exact in ``c``, so the solver first minimises the number of ``-inf`` edges and then
maximises the finite sum, and no ``-inf - -inf`` (NaN) can ever appear.

Each super-vertex is named by the index of its trace step: the non-root singletons are
steps ``0..L-2`` (in increasing vertex id), a contraction creates the next step index.
Reduced scores are ``score[i, j] - off[j]``, where ``off[j]`` sums the best reduced
scores of every super-vertex that contains ``j`` (one float64 addition per step).
"""

cimport cython
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef struct Scratch:
    Py_ssize_t *cs       # [n] super-vertex (step index) holding each vertex; -1 for the root
    Py_ssize_t *leaf     # [n] singleton step of each vertex
    Py_ssize_t *mem      # [n] members of the super-vertex being processed, increasing
    int64_t *offc        # [n] offset of the -inf counts
    double *offv         # [n] offset of the finite parts
    Py_ssize_t *up       # [S] step of the super-vertex a step was contracted into, or -1
    Py_ssize_t *mark     # [S] cycle search: the start step that visited each step
    Py_ssize_t *cyc      # [S] steps on the cycle being contracted
    unsigned char *flag  # [S] alive super-vertex (search), then entered (expansion)


cdef void _choose(
    const cython.floating *w,
    Py_ssize_t n,
    Py_ssize_t length,
    Py_ssize_t t,
    Scratch *sc,
    int64_t *edge,
    unsigned char *mrow,
) noexcept nogil:
    """Best in-edge of super-vertex ``t``; records it and subtracts its reduced score."""
    cdef Py_ssize_t i, j, q, k = 0, bi = -1, bj = -1
    cdef int64_t c, bc = 0
    cdef double v, bv = 0.0
    cdef cython.floating x
    for j in range(length):
        if sc.cs[j] == t:
            sc.mem[k] = j
            k += 1
            if mrow != NULL:
                mrow[j] = 1
    # Row-major scan with strict improvement: ties go to the lowest (source, target).
    for i in range(length):
        if sc.cs[i] == t:
            continue
        for q in range(k):
            j = sc.mem[q]
            x = w[i * n + j]
            if x == -INFINITY:
                c = -1 - sc.offc[j]
                v = 0.0 - sc.offv[j]
            else:
                c = 0 - sc.offc[j]
                v = <double>x - sc.offv[j]
            if bi < 0 or c > bc or (c == bc and v > bv):
                bc = c
                bv = v
                bi = i
                bj = j
    edge[0] = bi
    edge[1] = bj
    for q in range(k):
        j = sc.mem[q]
        sc.offc[j] = sc.offc[j] + bc
        sc.offv[j] = sc.offv[j] + bv


cdef Py_ssize_t _find_cycle(Py_ssize_t n_steps, const int64_t *edges, Scratch *sc) noexcept nogil:
    """Steps of the first cycle of best in-edges (starts tried in step order); 0 if none."""
    cdef Py_ssize_t s0, s, k = 0
    for s in range(n_steps):
        sc.mark[s] = -1
    for s0 in range(n_steps):
        if not sc.flag[s0] or sc.mark[s0] >= 0:
            continue
        s = s0
        while s >= 0 and sc.mark[s] < 0:
            sc.mark[s] = s0
            s = sc.cs[edges[2 * s]]  # super-vertex of the source (-1 for the root)
        if s >= 0 and sc.mark[s] == s0:
            while True:
                sc.cyc[k] = s
                k += 1
                s = sc.cs[edges[2 * s]]
                if s == sc.cyc[0]:
                    return k
    return 0


cdef Py_ssize_t _solve(
    const cython.floating *w,
    Py_ssize_t n,
    Py_ssize_t length,
    Py_ssize_t root,
    cython.floating *out,
    int64_t *edges,
    unsigned char *members,
    Scratch *sc,
) noexcept nogil:
    """One graph: contract, record the trace, expand. Returns the number of steps."""
    cdef Py_ssize_t v, s, t, q, k, i, j, n_steps = 0
    for v in range(length):
        sc.offc[v] = 0
        sc.offv[v] = 0.0
        sc.cs[v] = -1
        if v != root:
            sc.cs[v] = n_steps
            sc.leaf[v] = n_steps
            sc.up[n_steps] = -1
            sc.flag[n_steps] = 1
            n_steps += 1
    for s in range(n_steps):
        _choose(w, n, length, s, sc, edges + 2 * s, members + s * n if members != NULL else NULL)
    while True:
        k = _find_cycle(n_steps, edges, sc)
        if k == 0:
            break
        t = n_steps
        n_steps += 1
        for q in range(k):
            sc.up[sc.cyc[q]] = t
            sc.flag[sc.cyc[q]] = 0
        for v in range(length):
            # live super-vertices have up == -1; the cycle's steps now have up == t
            if sc.cs[v] >= 0 and sc.up[sc.cs[v]] == t:
                sc.cs[v] = t
        sc.up[t] = -1
        sc.flag[t] = 1
        _choose(w, n, length, t, sc, edges + 2 * t, members + t * n if members != NULL else NULL)
    # Expansion, outermost super-vertices first: a super-vertex not yet entered keeps its
    # own best in-edge, which enters every super-vertex on the way down to its target.
    for s in range(n_steps):
        sc.flag[s] = 0
    for s in range(n_steps - 1, -1, -1):
        if sc.flag[s]:
            continue
        i = edges[2 * s]
        j = edges[2 * s + 1]
        out[i * n + j] = 1
        t = sc.leaf[j]
        while t >= 0 and not sc.flag[t]:
            sc.flag[t] = 1
            t = sc.up[t]
    return n_steps


def edmonds(
    const cython.floating[:, :, ::1] scores,
    const int64_t[::1] lengths,
    Py_ssize_t root,
    cython.floating[:, :, ::1] out,
    int64_t[:, :, ::1] edges,
    unsigned char[:, :, ::1] members,
    int64_t[::1] n_steps,
):
    """Maximum spanning arborescences of a batch of graphs, with contraction traces.

    Inputs are validated by the wrapper; this kernel trusts them.

    Args:
        scores: ``[B, n, n]`` C-contiguous, entry ``[i, j]`` = score of edge i->j, no NaN/+inf.
        lengths: ``[B]`` vertices used per graph, each in ``[root + 1, n]``.
        root: root vertex shared by the batch.
        out: ``[B, n, n]`` zeros; receives 1 at every chosen edge.
        edges: ``[B, S, 2]`` with ``S >= 2n - 3``; rows ``< n_steps`` receive the steps' edges.
        members: ``[B, S, n]`` zeros (as uint8) receiving the steps' members, or ``[B, 0, n]``
            to skip recording them.
        n_steps: ``[B]`` receives the number of steps of each graph.
    """
    cdef Py_ssize_t b, n = scores.shape[2], big = 2 * scores.shape[2]
    cdef bint record = members.shape[1] > 0
    cdef Scratch sc
    cdef unsigned char *mrow = NULL
    sc.cs = <Py_ssize_t *> malloc((3 * n + 3 * big) * sizeof(Py_ssize_t))
    sc.offc = <int64_t *> malloc(n * sizeof(int64_t))
    sc.offv = <double *> malloc(n * sizeof(double))
    sc.flag = <unsigned char *> malloc(big * sizeof(unsigned char))
    try:
        if sc.cs == NULL or sc.offc == NULL or sc.offv == NULL or sc.flag == NULL:
            raise MemoryError()
        sc.leaf = sc.cs + n
        sc.mem = sc.cs + 2 * n
        sc.up = sc.cs + 3 * n
        sc.mark = sc.up + big
        sc.cyc = sc.mark + big
        with nogil:
            for b in range(scores.shape[0]):
                if record:
                    mrow = &members[b, 0, 0]
                n_steps[b] = _solve(
                    &scores[b, 0, 0], n, lengths[b], root, &out[b, 0, 0], &edges[b, 0, 0],
                    mrow, &sc,
                )
    finally:
        free(sc.cs)
        free(sc.offc)
        free(sc.offv)
        free(sc.flag)
