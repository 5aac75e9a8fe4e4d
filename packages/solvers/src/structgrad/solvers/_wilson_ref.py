"""numpy twin of ``_wilson.pyx``: Wilson's walks of every sample in lockstep.

Same interface and bit-identical results: the step CDFs are the same float64 sums of
libm's ``exp`` (``math.exp`` calls it; numpy's own ``exp`` may differ in the last bit),
each walker (sample ``s`` of graph ``b``, ``w = s * B + b``) draws from its own
SplitMix64 stream in the order the compiled kernel does, the uniforms are mapped to steps
by the same float64 arithmetic, and the start vertices are taken in the same (increasing)
order. All walkers of one start vertex step
together, one numpy operation per step, so this twin is slow only through its Python loop
over steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

# SplitMix64's increment: the odd integer nearest 2**64 / golden ratio.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser on an array (numpy's uint64 array arithmetic wraps mod 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _step_cdf(logw: NDArray[np.floating[Any]], inside: NDArray[np.uint8]) -> NDArray[np.float64]:
    """``[B, v, u]``: running sums over ``u`` of the step weights ``v -> u`` (as the kernel)."""
    n = logw.shape[-1]
    col = np.swapaxes(logw, 1, 2).astype(np.float64)  # [B, v, u] = logw[B, u, v]
    # Self-loops and steps to outside vertices are absent.
    col[:, np.eye(n, dtype=bool)] = -np.inf
    col[np.broadcast_to(inside[:, None, :] == 0, col.shape)] = -np.inf
    # Max shift (0 for a row without steps): the largest weight is exp(0) = 1.
    top = col.max(-1, keepdims=True)
    shifted = col - np.where(top == -np.inf, 0.0, top)
    # math.exp is libm's exp, as in the kernel (numpy's SIMD exp may differ in the last bit).
    weights = np.fromiter(map(math.exp, shifted.ravel()), np.float64, shifted.size)
    weights = weights.reshape(shifted.shape)
    return np.add.accumulate(weights, axis=-1)  # sequential sums, in the kernel's order


def wilson(
    logw: NDArray[np.floating[Any]],
    inside: NDArray[np.uint8],
    root: int,
    seed: int,
    max_steps: int,
    parents: NDArray[np.int64],
    ok: NDArray[np.uint8],
) -> None:
    """Fill ``parents`` [count, B, n] and ``ok`` [count, B] from ``logw`` [B, n, n]."""
    cdf = _step_cdf(logw, inside)
    size, n, _ = cdf.shape
    count = parents.shape[0]
    walkers = count * size
    graph = np.tile(np.arange(size), count)  # walker w = s * B + b works on graph b
    state = _mix(_mix(np.arange(walkers, dtype=np.uint64)) ^ np.uint64(seed))
    in_tree = np.repeat(inside[None] == 0, count, 0).reshape(walkers, n)
    in_tree[:, root] = True
    parent = np.full((walkers, n), -1, dtype=np.int64)
    good = np.ones(walkers, dtype=bool)
    steps = np.zeros(walkers, dtype=np.int64)
    total = cdf[:, :, -1]  # [B, n]
    for start in range(n):
        cur = np.full(walkers, start, dtype=np.int64)
        walking = good & ~in_tree[:, start]
        while (idx := np.flatnonzero(walking)).size:
            tot = total[graph[idx], cur[idx]]
            # The kernel's failure test, before the step: budget spent or no step at all.
            stuck = (steps[idx] >= max_steps) | ~(tot > 0)
            good[idx[stuck]] = walking[idx[stuck]] = False
            idx, tot = idx[~stuck], tot[~stuck]
            state[idx] += _GAMMA
            # Top 53 bits times 2**-53: a uniform in [0, 1), exactly as in the kernel.
            u = (_mix(state[idx]) >> np.uint64(11)).astype(np.float64) * 2.0**-53
            rows = cdf[graph[idx], cur[idx]]  # [k, n], nondecreasing
            # First u with cdf >= target (a count of the entries below it); target in (0, total].
            step = (rows < ((1.0 - u) * tot)[:, None]).sum(-1)
            parent[idx, cur[idx]] = step
            cur[idx] = step
            steps[idx] += 1
            walking[idx] = ~in_tree[idx, step]
        # Loop erasure: the last exits from the start lead to the tree; they join it.
        cur[:] = start
        tracing = good & ~in_tree[:, start]
        while (idx := np.flatnonzero(tracing)).size:
            in_tree[idx, cur[idx]] = True
            cur[idx] = parent[idx, cur[idx]]
            tracing[idx] = ~in_tree[idx, cur[idx]]
    parent[~good] = -1
    parents[...] = parent.reshape(count, size, n)
    ok[...] = good.reshape(count, size)
