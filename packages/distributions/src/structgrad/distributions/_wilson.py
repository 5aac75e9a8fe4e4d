"""Exact samplers of arborescences (and so of spanning trees) with weights ``exp(θ)``.

Wilson's algorithm: from each vertex not yet in the tree, a random walk that
steps from ``v`` to ``u`` with probability ``∝ exp(θ_uv)`` (toward the root,
against the edge ``u → v``) runs until it hits the tree; its loop erasure (kept
implicitly: the last exit from each vertex wins) joins the tree. The result has
probability ``∝ Π exp(θ)`` exactly. It is written in numpy on the CPU, batched
over samples and graphs, with all walks in lockstep (a compiled version is
future work).

Its running time is the walks' mean hitting time, which grows like
``exp(spread)`` when heavy groups of vertices hang on light edges; walks past a
step budget are abandoned and those samples are drawn by sequential
conditioning instead (exact too: each vertex's parent from its marginals given
the parents already drawn), which costs ``n`` log-partition gradients.

References:
    Wilson, "Generating random spanning trees more quickly than the cover
    time", STOC 1996.
    Propp and Wilson, "How to get a perfectly random sample from a generic
    Markov chain and generate a random spanning tree of a directed graph",
    J. Algorithms 1998.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ._matrix_tree import arborescence_log_partition
from ._utils import gradient, numpy_rng

__all__ = ["sample_arborescences"]

#: Steps a lockstep phase of walks may take, per vertex, before its walks are abandoned.
STEPS_PER_VERTEX = 2000


def _wilson(
    logw: NDArray[np.float64],
    root: int,
    inside: NDArray[np.bool_],
    count: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Parents ``[count, B, n]`` (``-1``: root or padding) and a ``[count, B]`` success flag.

    ``logw`` is ``[B, n, n]`` with ``-inf`` on non-edges (entry ``[u, v]``: edge ``u → v``).
    """
    size, n, _ = logw.shape
    # Walk from v to u with probability ∝ exp(θ_uv): the columns, max-shifted.
    col = np.swapaxes(logw, 1, 2)  # [B, v, u]
    top = col.max(-1, keepdims=True)
    # Max shift (0 for an all -inf column): the largest step weight is 1.
    cdf = np.cumsum(np.exp(col - np.where(np.isfinite(top), top, 0.0)), -1)  # [B, v, u]
    walkers = count * size
    graph = np.tile(np.arange(size), count)  # walker m = s * B + b works on graph b
    in_tree = np.repeat(~inside[None], count, 0).reshape(walkers, n)
    in_tree[:, root] = True
    parent = np.full((walkers, n), -1, dtype=np.int64)
    ok = np.ones(walkers, dtype=bool)
    budget = STEPS_PER_VERTEX * n
    for start in range(n):
        walking = ~in_tree[:, start] & ok
        cur = np.full(walkers, start, dtype=np.int64)
        for _ in range(budget):
            idx = np.flatnonzero(walking)
            if not idx.size:
                break
            c = cdf[graph[idx], cur[idx]]  # [k, n]
            # u in (0, 1]: the first u with cdf >= u * total, never a zero-weight step.
            u = (1.0 - rng.random(idx.size)) * c[:, -1]
            step = np.minimum((c < u[:, None]).sum(-1), n - 1)
            dead = ~(c[:, -1] > 0)  # no edge into this vertex at all
            parent[idx, cur[idx]] = step
            cur[idx] = step
            walking[idx] = ~in_tree[idx, step] & ~dead
            ok[idx[dead]] = False
        ok &= ~walking  # out of budget: abandoned
        tracing = ~in_tree[:, start] & ok
        cur[:] = start
        while tracing.any():  # the loop-erased path joins the tree
            idx = np.flatnonzero(tracing)
            in_tree[idx, cur[idx]] = True
            cur[idx] = parent[idx, cur[idx]]
            tracing[idx] = ~in_tree[idx, cur[idx]]
    parent[:, root] = -1
    parent[~in_tree] = -1
    parent = np.where(np.repeat(inside[None], count, 0).reshape(walkers, n), parent, -1)
    return parent.reshape(count, size, n), ok.reshape(count, size)


def _conditional(x: Tensor, root: int, inside: Tensor, generator: torch.Generator | None) -> Tensor:
    """Parents ``[K, n]`` drawn vertex by vertex from conditional marginals (exact, any spread)."""
    x = x.clone()
    parents = torch.full(x.shape[:-1], -1, dtype=torch.long, device=x.device)
    for j in range(x.shape[-1]):
        if j == root:
            continue

        def log_z(s: Tensor) -> Tensor:
            return arborescence_log_partition(s, root=root, inside=inside)

        probs = gradient(log_z, x)[..., :, j]  # [K, n]: P(parent of j = i | drawn so far)
        live = inside[..., j]
        probs = torch.where(live[..., None], probs.clamp(min=0), torch.ones_like(probs))
        pick = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        parents[..., j] = torch.where(live, pick, -1)
        keep = torch.nn.functional.one_hot(pick, x.shape[-1]).bool()
        x[..., :, j] = torch.where(keep | ~live[..., None], x[..., :, j], -math.inf)
    return parents


def sample_arborescences(
    logits: Tensor,
    root: int,
    inside: Tensor | None,
    count: int,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Exact samples of ``p(A) ∝ exp(Σ_{(i→j)∈A} θ_ij)`` over arborescences rooted at ``root``.

    Args:
        logits: ``[B, n, n]`` log-potentials, entry ``[i, j]`` for ``i → j``, ``-inf``
            on forbidden edges; the diagonal and column ``root`` are not read.
        root: the root.
        inside: optional ``[B, n]`` mask of the vertices in each graph.
        count: samples per graph.
        generator: optional ``torch.Generator``; it seeds the numpy walks.

    Returns:
        ``[count, B, n, n]`` 0/1 adjacencies in ``logits``' dtype and device.
    """
    size, n, _ = logits.shape
    if inside is None:
        inside = torch.ones(size, n, dtype=torch.bool, device=logits.device)
    edges = ~torch.eye(n, dtype=torch.bool, device=logits.device)
    edges[:, root] = False
    edges = edges & inside[:, :, None] & inside[:, None, :]
    x = torch.where(edges, logits.detach().to(torch.float64), -math.inf)
    parent_np, ok_np = _wilson(
        x.cpu().numpy(), root, inside.cpu().numpy(), count, numpy_rng(generator)
    )
    parents = torch.from_numpy(parent_np).to(logits.device)
    failed = ~torch.from_numpy(ok_np).to(logits.device)
    if bool(failed.any()):
        which = failed.nonzero()  # [K, 2]: (sample, graph)
        graphs = which[:, 1]
        parents[which[:, 0], which[:, 1]] = _conditional(x[graphs], root, inside[graphs], generator)
    adjacency = torch.zeros(count, size, n + 1, n, dtype=logits.dtype, device=logits.device)
    # Parent -1 (root, padding) writes into a spare row n, dropped below.
    src = torch.where(parents < 0, n, parents)
    adjacency.scatter_(-2, src.unsqueeze(-2), 1.0)
    return adjacency[..., :n, :]
