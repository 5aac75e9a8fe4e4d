"""Maximum spanning arborescence (Chu-Liu/Edmonds) with its contraction trace."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _backend, _validate
from ._bridge import traced_op

__all__ = ["ArborescenceTrace", "max_arborescence"]

# Finite scores above this magnitude are rescaled by a power of two (per graph, down to
# it) so that the float64 reduced scores, which grow with the contraction depth, stay far
# from overflow. Scaling by 2**-e is exact (so it changes no comparison) except for scores
# below about 2**-560 in magnitude, which may lose bits as subnormals.
_SAFE_MAGNITUDE = 2.0**512


class ArborescenceTrace(NamedTuple):
    """Contraction trace of Chu-Liu/Edmonds: one step per super-vertex's best in-edge.

    Steps ``0..L-2`` are the non-root vertices in increasing order (``members = {v}``);
    each later step is a contraction, for the super-vertex it forms (``members`` = all
    the original vertices inside), in the order the contractions happen. The candidates
    of step ``s`` are the edges ``(i, j)`` with ``i`` outside ``members[s]`` (the root
    included), ``j`` inside, both ``< L``; the step's edge is the candidate with the
    largest *reduced* score (the score minus the best reduced scores of the earlier
    steps whose members contain ``j``). Rows ``s >= n_steps`` hold -1 / False.

    Attributes:
        edges: ``(*batch, S, 2)`` int64, ``S = max(1, 2n - 3)``: the step's (source,
            target) in original vertex ids.
        members: ``(*batch, S, n)`` bool: the vertices of the step's super-vertex.
        n_steps: ``(*batch,)`` int64: ``L - 1`` plus the number of contractions.
    """

    edges: Any
    members: Any
    n_steps: Any


def _safe_scale(
    flat: NDArray[np.floating[Any]], root: int, lens: NDArray[np.int64]
) -> NDArray[np.floating[Any]]:
    """Rescale each graph whose edge scores pass :data:`_SAFE_MAGNITUDE` by a power of two.

    Exact, and it keeps every decision: a graph is scaled by its own largest
    edge score (not the batch's, nor its ignored diagonal, root column or
    padding), just enough to bring it below ``2**512``, so only scores below
    about ``2**-560`` may lose bits.
    """
    n = flat.shape[-1]
    index = np.arange(n)
    edges = (index[:, None] != index[None, :]) & (index[None, :] != root)  # [n, n]
    inside = index[None, :] < lens[:, None]  # [B, n]
    read = edges[None] & inside[:, :, None] & inside[:, None, :] & np.isfinite(flat)
    biggest = np.max(np.abs(flat), axis=(1, 2), initial=0.0, where=read).astype(np.float64)
    huge = biggest > _SAFE_MAGNITUDE
    if not huge.any():
        return flat
    # biggest < 2**e: scaling by 2**(512 - e) leaves it below 2**512
    shift = np.where(huge, np.frexp(biggest)[1] - 512, 0)
    return np.ascontiguousarray(np.ldexp(flat.astype(np.float64), -shift[:, None, None]))


def max_arborescence(
    scores: Any,
    *,
    root: int = 0,
    lengths: Any = None,
    return_trace: bool = False,
) -> Any:
    """Maximum spanning arborescence rooted at ``root`` (Chu-Liu/Edmonds), batched.

    Maximises the sum of the scores of the chosen edges over the arborescences of each
    graph: every non-root vertex below the graph's length gets exactly one parent. The
    diagonal and the edges into the root are ignored. A ``-inf`` score forbids an edge:
    the solver uses as few ``-inf`` edges as possible (none when it can), then maximises
    the finite sum. This is exact: the kernel sums pairs (number of ``-inf`` edges,
    finite part) compared lexicographically, never ``-inf`` itself, so with every score
    ``-inf`` the result is still a valid arborescence and nothing is ever NaN.

    Tie-breaking (identical in the compiled kernel and its twin): each super-vertex's
    best in-edge is the candidate with the largest reduced score, ties to the lowest
    ``(source, target)`` in row-major order; cycles of best in-edges are contracted one
    at a time, the first one met when following best in-edges from each live
    super-vertex in step order; all sums are in float64. Finite scores larger than
    ``2**512`` in magnitude are first rescaled by a power of two, which keeps every
    decision (only scores below about ``2**-560`` may then lose bits as subnormals); each
    graph is rescaled by its own largest edge score (ignored entries do not count).

    Run on ``-E`` with exponentials ``E = Exp(1) / exp(θ)`` the trace has the
    recursive-Gumbel law ``p(T) = Π_steps softmax(θ over the candidates)[edge]``
    (minimum arborescence of ``E``); run on ``θ + Gumbel`` it is perturb-and-MAP, a
    different distribution.

    Args:
        scores: ``(*batch, n, n)`` float array or CPU/CUDA tensor, ``n >= 2``; entry
            ``[i, j]`` is the score of the edge ``i -> j``. No NaN or ``+inf``.
        root: the root vertex, in ``[0, n)`` and below every length.
        lengths: optional ints broadcastable to ``batch``, each in ``[1, n]``: graph ``b``
            uses the vertices ``0..lengths[b]-1``; a graph of one vertex has no edges.
        return_trace: also return the :class:`ArborescenceTrace`.

    Returns:
        ``(*batch, n, n)`` 0/1 adjacency in the input's kind and float dtype,
        ``[i, j] = 1`` for the edge ``i -> j``; with ``return_trace``, the pair
        ``(adjacency, trace)`` (trace arrays int64 / bool of the input's kind).

    Raises:
        ValueError: on NaN or ``+inf`` scores, a rank below 2, non-square or ``n < 2``
            scores, a root outside ``[0, n)`` or not below every length, bad lengths.

    References:
        Chu & Liu, "On the shortest arborescence of a directed graph", Sci. Sinica 1965;
        Edmonds, "Optimum branchings", J. Res. NBS 1967; Struminsky et al., "Leveraging
        Recursive Gumbel-Max Trick for Approximate Inference in Combinatorial Spaces",
        NeurIPS 2021, https://arxiv.org/abs/2110.15072 (the contraction trace).
    """
    op = traced_op(scores, "max_arborescence_trace" if return_trace else "max_arborescence")
    if op is not None:
        return op(scores, _validate.refuse_float(root, "root"), lengths)  # (an int, as for top_k)
    return _on_host(scores, root, lengths, return_trace)


def _on_host(scores: Any, root: int, lengths: Any, return_trace: bool) -> Any:
    """The numpy path of :func:`max_arborescence` (torch tensors convert through the host)."""
    batch = _validate.batched(scores, "scores", core_ndim=2, square=True, min_size=2)
    n = batch.flat.shape[-1]
    root = _validate.check_int(root, "root", 0, n - 1)
    lens = _validate.check_lengths(lengths, batch.batch_shape, n)
    if lens.size and lens.min() <= root:
        raise ValueError(f"root {root} must be smaller than every length, got {lens.min()}")
    flat = _safe_scale(batch.flat, root, lens)  # [B, n, n]
    size, steps = flat.shape[0], max(1, 2 * n - 3)
    out = np.zeros(flat.shape, dtype=flat.dtype)  # [B, n, n]
    edges = np.full((size, steps, 2), -1, dtype=np.int64)  # [B, S, 2]
    members = np.zeros((size, steps if return_trace else 0, n), dtype=np.bool_)  # [B, S, n]
    n_steps = np.zeros(size, dtype=np.int64)  # [B]
    kernels = _backend.kernel("_edmonds", "_edmonds_ref")
    kernels.edmonds(flat, lens, root, out, edges, members.view(np.uint8), n_steps)
    shape = batch.batch_shape
    solution = batch.bridge.solution(out.reshape(*shape, n, n))
    if not return_trace:
        return solution
    index = batch.bridge.index
    trace = ArborescenceTrace(
        edges=index(edges.reshape(*shape, steps, 2)),
        members=index(members.reshape(*shape, steps, n)),
        n_steps=index(n_steps.reshape(shape)),
    )
    return solution, trace
