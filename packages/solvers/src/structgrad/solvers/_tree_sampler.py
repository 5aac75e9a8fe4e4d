"""Exact samples of weighted arborescences and spanning trees (Wilson's algorithm), batched."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _backend, _validate
from ._bridge import _is_torch

__all__ = ["WilsonSamples", "wilson_arborescences"]

#: Default step budget of one sample's walks, per squared vertex count.
STEPS_PER_VERTEX_PAIR = 2000


class WilsonSamples(NamedTuple):
    """Samples of :func:`wilson_arborescences`.

    Attributes:
        parents: ``[count, ..., n]`` int64, the parent of each vertex (the source of
            its in-edge); ``-1`` for the root, outside vertices and failed samples.
        ok: ``[count, ...]`` bool, False where the sample failed (its walks ran past
            ``max_steps``, or met a vertex without any allowed in-edge).
    """

    parents: Any
    ok: Any


def _inside(
    inside: Any, lengths: Any, batch_shape: tuple[int, ...], n: int, root: int
) -> NDArray[np.bool_]:
    """``[B, n]`` vertex mask from ``inside`` and ``lengths``; every graph holds ``root``."""
    mask = np.ones((*batch_shape, n), dtype=bool)
    if inside is not None:
        arr = inside.detach().cpu().numpy() if _is_torch(inside) else np.asarray(inside)
        if arr.dtype != np.bool_:
            raise ValueError(f"inside must be a boolean mask, got dtype {arr.dtype}")
        try:
            mask = mask & np.broadcast_to(arr, mask.shape)
        except ValueError:
            raise ValueError(
                f"inside of shape {arr.shape} does not match the shape {mask.shape}"
            ) from None
    flat = mask.reshape(-1, n)
    if lengths is not None:
        lens = _validate.check_lengths(lengths, batch_shape, n)
        flat = flat & (np.arange(n) < lens[:, None])
    if flat.size and not flat[:, root].all():
        raise ValueError(f"root {root} must be inside every graph")
    return np.ascontiguousarray(flat)


def wilson_arborescences(
    logw: Any,
    *,
    root: int = 0,
    inside: Any = None,
    lengths: Any = None,
    count: int = 1,
    seed: int = 0,
    max_steps: int | None = None,
) -> WilsonSamples:
    """Exact samples of ``p(A) ∝ Π_{(u→v)∈A} exp(logw[u, v])`` over arborescences, batched.

    Wilson's algorithm with root ``root``: from each vertex not yet in the tree, in
    increasing order, a random walk steps from ``v`` to ``u`` with probability
    ``∝ exp(logw[u, v])`` (toward the root, against the edge ``u → v``) until it hits
    the tree; its loop erasure (the last exit from each vertex) joins the tree. With a
    symmetric ``logw`` the parents are a spanning tree drawn with probability
    ``∝ Π exp(logw)`` over its undirected edges.

    A sample fails (``ok`` False, parents ``-1``) when its walks together would take
    more than ``max_steps`` steps. That event is independent of the tree: the steps
    are the popped cycles' edges plus one per tree edge, and the popped cycles are
    independent of the tree (Propp and Wilson 1998), so the samples that succeed
    follow the exact law and failed ones can be redrawn by any exact method. A sample
    also fails when a walk reaches a vertex with no allowed in-edge (no arborescence
    exists), or spends its budget where the root is unreachable.

    Randomness: sample ``s`` of graph ``b`` uses its own SplitMix64 stream derived
    from ``seed`` and ``s * B + b`` (``B`` the flattened batch size), so results are
    reproducible for the same inputs and seed, and identical in the compiled kernel
    and its numpy twin.

    Args:
        logw: ``(*batch, n, n)`` log-weights, ``n >= 2``; entry ``[u, v]`` is the edge
            ``u → v``, ``-inf`` an absent edge. The diagonal and column ``root`` are
            not read. No NaN or ``+inf``.
        root: the root vertex, in ``[0, n)`` and inside every graph.
        inside: optional boolean ``(*batch, n)`` mask (broadcastable) of the vertices
            of each graph; edges touching other vertices are absent.
        lengths: optional ints broadcastable to ``batch``, each in ``[1, n]``: graph
            ``b`` keeps only the vertices ``0..lengths[b]-1`` (combined with ``inside``).
        count: samples per graph, ``>= 0``.
        seed: seed in ``[0, 2**64)``.
        max_steps: step budget of one sample's walks, ``>= 0`` (default
            ``2000 * n * n``, far above the mean unless weights spread widely).

    Returns:
        :class:`WilsonSamples` ``(parents [count, *batch, n], ok [count, *batch])``,
        numpy arrays, or torch tensors on ``logw``'s device for a torch ``logw``.

    Raises:
        ValueError: on NaN or ``+inf`` weights, a rank below 2, non-square or ``n < 2``
            weights, a root outside ``[0, n)`` or outside a graph, a non-boolean or
            misshapen ``inside``, bad lengths, or ``count``, ``seed`` or ``max_steps``
            out of range.

    References:
        Wilson, "Generating random spanning trees more quickly than the cover time",
        STOC 1996; Propp and Wilson, "How to get a perfectly random sample from a
        generic Markov chain and generate a random spanning tree of a directed graph",
        J. Algorithms 1998.
    """
    batch = _validate.batched(logw, "logw", core_ndim=2, square=True, min_size=2)
    n = batch.flat.shape[-1]
    root = _validate.check_int(root, "root", 0, n - 1)
    count = _validate.check_int(count, "count", 0, 2**40)
    seed = _validate.check_int(seed, "seed", 0, 2**64 - 1)
    steps = STEPS_PER_VERTEX_PAIR * n * n if max_steps is None else max_steps
    steps = _validate.check_int(steps, "max_steps", 0, 2**63 - 1)
    mask = _inside(inside, lengths, batch.batch_shape, n, root)  # [B, n]
    size = batch.flat.shape[0]
    parents = np.full((count, size, n), -1, dtype=np.int64)
    ok = np.zeros((count, size), dtype=bool)
    kernels = _backend.kernel("_wilson", "_wilson_ref")
    kernels.wilson(batch.flat, mask.view(np.uint8), root, seed, steps, parents, ok.view(np.uint8))
    shape = batch.batch_shape
    index = batch.bridge.index
    return WilsonSamples(index(parents.reshape(count, *shape, n)), index(ok.reshape(count, *shape)))
