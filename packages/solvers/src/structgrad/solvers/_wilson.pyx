"""Wilson's algorithm: exact samples of weighted arborescences, batched (compiled kernel).

The pure-Python twin is ``_wilson_ref.py``; both draw the same random numbers in the same
order, compute the same step CDFs (libm's ``exp``, which Python's ``math.exp`` calls too)
and give bit-identical results. The public wrapper is ``_tree_sampler.wilson_arborescences``.

Graph by graph, the step CDFs are computed once and shared by the graph's ``count``
samples: row ``v`` holds the running sums over ``u`` of ``exp(logw[u, v] - top_v)``, with
weight 0 for ``u == v`` and for ``u`` outside the graph (``top_v``: the row's largest
allowed log-weight, 0 when there is none).

Sample ``s`` of graph ``b`` (walker ``w = s * B + b``) owns a SplitMix64 stream whose
state starts at ``mix(mix(w) ^ seed)``; each walk step adds the golden gamma to the state
and draws ``mix(state)``. Its vertices are started in increasing order: the walk from a
vertex outside the tree steps from ``v`` to ``u`` with probability ``∝`` the increments of
CDF row ``v`` until it hits the tree, recording the last exit of each vertex
(``parent[v] = u``), and the loop-erased path (the chain of last exits from the start)
then joins the tree. A sample fails (``ok = 0``, parents all ``-1``) when a walk reaches a
vertex without any step (a zero CDF row) or when its walks together would take more than
``max_steps`` steps.

References:
    Wilson, "Generating random spanning trees more quickly than the cover time",
    STOC 1996.
    Propp and Wilson, "How to get a perfectly random sample from a generic Markov chain
    and generate a random spanning tree of a directed graph", J. Algorithms 1998.
    Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
    OOPSLA 2014 (SplitMix64).
"""

from cython cimport floating
from libc.math cimport INFINITY, exp
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

# SplitMix64's increment: the odd integer nearest 2**64 / golden ratio.
cdef uint64_t GAMMA = 0x9E3779B97F4A7C15ULL
# 2**-53: the top 53 bits of a draw, times this, are a uniform double in [0, 1), exactly.
cdef double TWO_M53 = 1.0 / 9007199254740992.0


cdef inline uint64_t _mix(uint64_t z) noexcept nogil:
    # SplitMix64's finaliser: a bijection of 64 bits with full avalanche (arithmetic mod 2**64).
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline Py_ssize_t _search(const double *row, Py_ssize_t n, double target) noexcept nogil:
    # First u with row[u] >= target (row is nondecreasing and row[n - 1] >= target > 0):
    # a zero-weight step never has its CDF value first above a positive target.
    cdef Py_ssize_t lo = 0, hi = n - 1, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if row[mid] >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef bint _sample(const double *cdf, const uint8_t *inside, Py_ssize_t n, Py_ssize_t root,
                  uint64_t state, int64_t max_steps, int64_t *parent,
                  uint8_t *in_tree) noexcept nogil:
    """One arborescence of one graph into ``parent[n]``; False when the sample fails."""
    cdef Py_ssize_t v, start, cur
    cdef int64_t steps = 0
    cdef double total, u
    for v in range(n):
        parent[v] = -1
        in_tree[v] = not inside[v]  # outside vertices count as done: never walked to
    in_tree[root] = 1
    for start in range(n):
        cur = start
        while not in_tree[cur]:
            total = cdf[cur * n + n - 1]
            if steps >= max_steps or not total > 0:
                return False
            steps += 1
            state += GAMMA
            u = <double>(_mix(state) >> 11) * TWO_M53
            # 1 - u lies in (0, 1], so the target is positive and at most the total.
            parent[cur] = _search(cdf + cur * n, n, (1.0 - u) * total)
            cur = parent[cur]
        # Loop erasure: the last exits from the start lead to the tree; they join it.
        cur = start
        while not in_tree[cur]:
            in_tree[cur] = 1
            cur = parent[cur]
    return True


cdef void _step_cdf(const floating[:, :, ::1] logw, Py_ssize_t b, const uint8_t *inside,
                    Py_ssize_t root, double *cdf) noexcept nogil:
    """Row ``v`` of ``cdf[n, n]``: running sums over ``u`` of the step weights ``v -> u``."""
    cdef Py_ssize_t n = logw.shape[1], u, v
    cdef double top, acc
    for v in range(n):
        if v == root or not inside[v]:
            continue  # never walked from
        top = -INFINITY
        for u in range(n):
            if u != v and inside[u] and logw[b, u, v] > top:
                top = logw[b, u, v]
        # Max shift (0 for a row without steps): the largest weight is exp(0) = 1, so no
        # overflow at any logit spread; weights far below it underflow to 0 (never taken).
        if top == -INFINITY:
            top = 0.0
        acc = 0.0
        for u in range(n):
            if u != v and inside[u]:
                acc += exp(<double>logw[b, u, v] - top)  # exp(-inf) = 0: an absent edge
            cdf[v * n + u] = acc


def wilson(const floating[:, :, ::1] logw, const uint8_t[:, ::1] inside, Py_ssize_t root,
           uint64_t seed, int64_t max_steps, int64_t[:, :, ::1] parents, uint8_t[:, ::1] ok):
    """Fill ``parents`` [count, B, n] and ``ok`` [count, B] from ``logw`` [B, n, n]."""
    cdef Py_ssize_t size = logw.shape[0], n = logw.shape[1], count = parents.shape[0]
    cdef Py_ssize_t s, b, v
    cdef uint64_t walker
    if size == 0 or count == 0:
        return
    cdef uint8_t *in_tree = <uint8_t *> malloc(n * sizeof(uint8_t))
    cdef double *cdf = <double *> malloc(n * n * sizeof(double))
    if in_tree == NULL or cdf == NULL:
        free(in_tree)
        free(cdf)
        raise MemoryError()
    with nogil:
        for b in range(size):
            _step_cdf(logw, b, &inside[b, 0], root, cdf)
            for s in range(count):
                walker = <uint64_t>(s * size + b)
                if _sample(cdf, &inside[b, 0], n, root, _mix(_mix(walker) ^ seed), max_steps,
                           &parents[s, b, 0], in_tree):
                    ok[s, b] = 1
                else:
                    ok[s, b] = 0
                    for v in range(n):
                        parents[s, b, v] = -1
    free(in_tree)
    free(cdf)
