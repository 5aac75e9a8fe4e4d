"""Matchings of square score matrices, batched (compiled kernels).

``assignment``: maximum-weight perfect matching on costs ``c = -scores`` in float64, by
Jonker-Volgenant (LAPJV, 1987): column reduction with reduction transfer, two passes of
augmenting row reduction (each capped at ``n`` re-queued rows, so float64 near-ties can
never make it cycle), then a shortest augmenting path (Dijkstra over a todo/ready column
list) for each row still free. Only the column prices are stored (as ``p = -v``, so that
reduced costs ``p_j - s_ij`` need no negation); a row's dual is ``u_i = min_j (p_j - s_ij)``.
The column reduction and the row scans of the augmenting row reduction are branch-free
(masks and min/max): their outcomes are data-dependent, and mispredicted branches, not
instructions, bound this kernel at small n.

Every JV answer then gets a certificate: with ``u_i = p_x(i) - s_i,x(i)`` every reduced cost
``p_j - s_ij - u_i`` must be ``>= -F``, and the "tight" non-matching pairs (reduced cost
``<= T = 4nF``) must hold no alternating cycle (Kahn's algorithm). That proves the matching
the unique optimum, by a margin far above float64 rounding (``F = n * 2**-40 * max(|p|,
|u|)``). When the certificate fails (tied or nearly tied optima, or rounding trouble) the
item is solved again by the textbook O(n^3) shortest augmenting path (e-maxx form, greedy
row-reduction start), step for step the algorithm of the pure-Python twin
``_assignment_ref.py``; so the compiled kernel and its twin return the same matching
whenever several are optimal, and JV's speed is kept on the (generic) unique optima. A row
that exactly ties another column's maximum in the reduction transfer (repeated values, as
in integer scores) starts the fallback at once, since tied optima are then all but certain.

``crossing``: the greedy "crossing" matching of the recursive Gumbel-max trick.
"""

from cython cimport floating
from libc.math cimport INFINITY, fabs
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc


cdef struct Work:
    double *v           # [n] column prices (JV), [n + 1] (fallback)
    double *d           # [n] Dijkstra distances (JV); u [n + 1] (fallback)
    double *minv        # [n + 1] fallback: Dijkstra distances
    Py_ssize_t *x       # [n] column of each row, -1 if free
    Py_ssize_t *y       # [n] row of each column, -1 if free
    Py_ssize_t *freer   # [n] free rows (JV); way [n + 1] (fallback)
    Py_ssize_t *col     # [n] column list: ready | todo | unscanned (JV); p [n + 1] (fallback)
    Py_ssize_t *pred    # [n] Dijkstra predecessor rows; certificate in-degrees
    Py_ssize_t *aux     # [n + 1] column-reduction argmin, certificate offsets and queue
    Py_ssize_t *tight   # [cap] certificate: tight non-matching columns, row by row
    char *flag          # [n + 1] fallback: used / done
    Py_ssize_t cap


def assignment(const double[:, :, ::1] scores, floating[:, :, ::1] perm):
    """Fill ``perm`` with a maximum-weight permutation matrix for every matrix."""
    cdef Py_ssize_t batch = scores.shape[0]
    cdef Py_ssize_t n = scores.shape[1]
    cdef Py_ssize_t g, i
    cdef Work w
    w.cap = n * n if n <= 128 else 16 * n
    w.v = <double *> malloc((n + 1) * sizeof(double))
    w.d = <double *> malloc((n + 1) * sizeof(double))
    w.minv = <double *> malloc((n + 1) * sizeof(double))
    w.x = <Py_ssize_t *> malloc((n + 1) * sizeof(Py_ssize_t))
    w.y = <Py_ssize_t *> malloc((n + 1) * sizeof(Py_ssize_t))
    w.freer = <Py_ssize_t *> malloc((n + 1) * sizeof(Py_ssize_t))
    w.col = <Py_ssize_t *> malloc((n + 1) * sizeof(Py_ssize_t))
    w.pred = <Py_ssize_t *> malloc((n + 1) * sizeof(Py_ssize_t))
    w.aux = <Py_ssize_t *> malloc((n + 2) * sizeof(Py_ssize_t))
    w.tight = <Py_ssize_t *> malloc((w.cap + 1) * sizeof(Py_ssize_t))
    w.flag = <char *> malloc((2 * n + 2) * sizeof(char))
    if (w.v == NULL or w.d == NULL or w.minv == NULL or w.x == NULL or w.y == NULL
            or w.freer == NULL or w.col == NULL or w.pred == NULL or w.aux == NULL
            or w.tight == NULL or w.flag == NULL):
        _release(&w)
        raise MemoryError()
    with nogil:
        for g in range(batch):
            if n == 1:
                perm[g, 0, 0] = 1
                continue
            if not _lapjv(&scores[g, 0, 0], n, &w):
                _hungarian(&scores[g, 0, 0], n, &w)
            for i in range(n):
                perm[g, i, w.x[i]] = 1
    _release(&w)


cdef void _release(Work *w) noexcept:
    free(w.v)
    free(w.d)
    free(w.minv)
    free(w.x)
    free(w.y)
    free(w.freer)
    free(w.col)
    free(w.pred)
    free(w.aux)
    free(w.tight)
    free(w.flag)


cdef bint _lapjv(const double *s, Py_ssize_t n, Work *w) noexcept nogil:
    """JV on costs ``-s`` (``n >= 2``); fills ``w.x`` and returns whether it is certified.

    Works in score space with prices ``p = -v``: the reduced cost of (i, j) is
    ``c_ij - v_j = p_j - s_ij``, so no negation is needed in the inner loops.
    """
    cdef double *p = w.v
    cdef double *d = w.d
    cdef Py_ssize_t *x = w.x
    cdef Py_ssize_t *y = w.y
    cdef Py_ssize_t *freer = w.freer
    cdef Py_ssize_t *col = w.col
    cdef Py_ssize_t *pred = w.pred
    cdef Py_ssize_t *imax = w.aux
    cdef const double *row
    cdef Py_ssize_t i, j, k, j1, j2, i0, nfree, prev, budget, low, up, last, end, f, rnd, m
    cdef double h, umin, usub, mn, u1

    # Column reduction: p_j = max_i s_ij (first row on ties).
    for j in range(n):
        p[j] = s[j]
        imax[j] = 0
    for i in range(1, n):
        row = s + i * n
        for j in range(n):
            # Branch-free (a mask, not a conditional store): the outcomes are data-dependent.
            h = row[j]
            m = -<Py_ssize_t>(h > p[j])
            imax[j] = (i & m) | (imax[j] & ~m)
            p[j] = max(h, p[j])
    # Each row takes the last column (scanning down from n - 1) it is the maximum of;
    # pred counts how many columns chose each row.
    for i in range(n):
        x[i] = -1
        pred[i] = 0
    for j in range(n - 1, -1, -1):
        i = imax[j]
        pred[i] += 1
        if pred[i] == 1:
            x[i] = j
            y[j] = i
        else:
            y[j] = -1
    # Reduction transfer: a row matched once hands its slack to its column (u_i = the
    # minimum over the other columns), so that rows still free find that column dearer.
    nfree = 0
    for i in range(n):
        if pred[i] == 0:
            freer[nfree] = i
            nfree += 1
        elif pred[i] == 1:
            j1 = x[i]
            row = s + i * n
            mn = INFINITY
            for j in range(j1):
                mn = min(mn, p[j] - row[j])
            for j in range(j1 + 1, n):
                mn = min(mn, p[j] - row[j])
            if mn == 0.0:
                # Row i ties another column's maximum exactly: repeated values (integer
                # scores), where tied optima, hence the fallback, are all but certain.
                # Starting it now saves the rest of JV and the certificate.
                return False
            p[j1] += mn - (p[j1] - row[j1])

    # Augmenting row reduction, two passes. A free row takes its cheapest column j1 and
    # raises p_j1 until its second-cheapest ties (raising u_i); the row it evicts is
    # handled next. Ties (no strict gap) move the evicted row to the next pass instead;
    # so does every eviction beyond the budget of n per pass.
    for _ in range(2):
        k = 0
        prev = nfree
        nfree = 0
        budget = n
        while k < prev:
            i = freer[k]
            k += 1
            row = s + i * n
            umin = p[0] - row[0]
            usub = INFINITY
            j1 = 0
            for j in range(1, n):
                # Branch-free running minimum (first on ties) and second minimum.
                h = p[j] - row[j]
                m = -<Py_ssize_t>(h < umin)
                j1 = (j & m) | (j1 & ~m)
                usub = min(usub, max(h, umin))
                umin = min(h, umin)
            i0 = y[j1]
            if umin < usub:
                p[j1] += usub - umin
            elif i0 >= 0:
                # A tie: take the first other column at the minimum instead.
                j2 = 0 if j1 else 1
                while j2 < n - 1 and (p[j2] - row[j2] != usub or j2 == j1):
                    j2 += 1
                j1 = j2
                i0 = y[j2]
            x[i] = j1
            y[j1] = i
            if i0 >= 0:
                x[i0] = -1
                if umin < usub and budget > 0:
                    budget -= 1
                    k -= 1
                    freer[k] = i0
                else:
                    freer[nfree] = i0
                    nfree += 1

    # Shortest augmenting path from each row still free. col[0:low] are ready (scanned),
    # col[low:up] todo (at the current minimum distance mn), col[up:n] not reached yet.
    for rnd in range(nfree):
        f = freer[rnd]
        row = s + f * n
        for j in range(n):
            d[j] = p[j] - row[j]
            pred[j] = f
            col[j] = j
        low = 0
        up = 0
        last = 0
        end = -1
        mn = 0.0
        while end < 0:
            if up == low:
                # New minimum: gather every unscanned column at the smallest distance.
                last = low
                mn = d[col[up]]
                up += 1
                for k in range(up, n):
                    j = col[k]
                    h = d[j]
                    if h <= mn:
                        if h < mn:
                            up = low
                            mn = h
                        col[k] = col[up]
                        col[up] = j
                        up += 1
                for k in range(low, up):
                    if y[col[k]] < 0:
                        end = col[k]
                        break
                if end >= 0:
                    break
            # Scan one todo column: relax through its row.
            j1 = col[low]
            low += 1
            i = y[j1]
            row = s + i * n
            u1 = p[j1] - row[j1] - mn
            k = up
            while k < n:
                j = col[k]
                h = p[j] - row[j] - u1
                if h < d[j]:
                    pred[j] = i
                    d[j] = h
                    if h == mn:
                        if y[j] < 0:
                            end = j
                            break
                        col[k] = col[up]
                        col[up] = j
                        up += 1
                k += 1
        # Price update of the ready columns, then augment along the predecessors.
        for k in range(last):
            j = col[k]
            p[j] -= d[j] - mn
        while True:
            i = pred[end]
            y[end] = i
            j = x[i]
            x[i] = end
            end = j
            if i == f:
                break

    return _certified(s, n, w)


cdef bint _certified(const double *s, Py_ssize_t n, Work *w) noexcept nogil:
    """Whether ``w.x`` is provably the unique optimum for the prices ``w.v`` (see top)."""
    cdef double *p = w.v
    cdef double *u = w.d
    cdef Py_ssize_t *x = w.x
    cdef Py_ssize_t *y = w.y
    cdef Py_ssize_t *tight = w.tight
    cdef Py_ssize_t *start = w.aux
    cdef Py_ssize_t *indeg = w.pred
    cdef Py_ssize_t *queue = w.col
    cdef const double *row
    cdef Py_ssize_t i, j, e, r, cnt, head, tail
    cdef double h, big, lowest, feas, tol, lim
    # Row duals u_i = p_x(i) - s_i,x(i) (reduced costs are p_j - s_ij - u_i). Rounding in
    # a reduced cost near 0 is relative to max(|p|, |u|), which sets the tolerances.
    big = 0.0
    for i in range(n):
        u[i] = p[x[i]] - s[i * n + x[i]]
        big = max(big, fabs(u[i]))
        big = max(big, fabs(p[i]))
    feas = n * big * 9.094947017729282e-13  # n * 2**-40 * max(|p|, |u|)
    tol = 4 * n * feas
    # Every pair with reduced cost <= tol is listed (the row's own column included: its
    # reduced cost is exactly 0); the smallest reduced cost of each row must be >= -feas.
    cnt = 0
    for i in range(n):
        if cnt + n > w.cap:
            return False
        start[i] = cnt
        row = s + i * n
        lim = u[i] + tol
        lowest = INFINITY
        for j in range(n):
            h = p[j] - row[j]
            lowest = min(lowest, h)
            tight[cnt] = j  # branch-free append: the slot is overwritten unless counted
            cnt += h <= lim
        if not lowest >= u[i] - feas:
            return False
    start[n] = cnt
    if cnt == n:
        return True
    # Kahn's algorithm on rows (i -> the row matched to each tight column of i): every row
    # removed means no alternating cycle of tight pairs, i.e. no other optimum.
    for i in range(n):
        indeg[i] = 0
    for e in range(cnt):
        indeg[y[tight[e]]] += 1
    tail = 0
    for i in range(n):
        indeg[i] -= 1  # the row's own column
        if indeg[i] == 0:
            queue[tail] = i
            tail += 1
    head = 0
    while head < tail:
        i = queue[head]
        head += 1
        for e in range(start[i], start[i + 1]):
            r = y[tight[e]]
            if r != i:
                indeg[r] -= 1
                if indeg[r] == 0:
                    queue[tail] = r
                    tail += 1
    return tail == n


cdef void _hungarian(const double *s, Py_ssize_t n, Work *w) noexcept nogil:
    """Textbook shortest augmenting path (e-maxx) with a greedy start; fills ``w.x``.

    Exactly the twin's algorithm: 1-based arrays, index 0 is the virtual column.
    """
    cdef double *u = w.d
    cdef double *v = w.v
    cdef double *minv = w.minv
    cdef Py_ssize_t *p = w.col
    cdef Py_ssize_t *way = w.freer
    cdef char *used = w.flag
    cdef char *done = w.flag + n + 1
    cdef Py_ssize_t i, j, i0, j0, j1
    cdef double delta, cur, ui0
    cdef bint better
    cdef const double *row
    for j in range(n + 1):
        u[j] = 0.0
        v[j] = 0.0
        p[j] = 0
        way[j] = 0
    # Row reduction (u_i = min_j c_ij, v = 0 keeps the duals feasible) and a greedy
    # start: rows whose cheapest column is still free take it (tight).
    for i in range(1, n + 1):
        row = s + (i - 1) * n
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
            row = s + (i0 - 1) * n
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
        w.x[p[j] - 1] = j - 1


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
