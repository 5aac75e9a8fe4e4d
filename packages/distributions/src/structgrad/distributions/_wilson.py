"""Exact samplers of arborescences (and so of spanning trees) with weights ``exp(θ)``.

Wilson's algorithm: from each vertex not yet in the tree, a random walk that
steps from ``v`` to ``u`` with probability ``∝ exp(θ_uv)`` (toward the root,
against the edge ``u → v``) runs until it hits the tree; its loop erasure (kept
implicitly: the last exit from each vertex wins) joins the tree. The result has
probability ``∝ Π exp(θ)`` exactly. The walks run in the compiled, batched
kernel :func:`structgrad.solvers.wilson_arborescences` on the CPU, seeded from
the torch generator.

Its running time is the walks' mean hitting time, which grows like
``exp(spread)`` when heavy groups of vertices hang on light edges; samples whose
walks pass a step budget are abandoned (an event independent of the tree, so the
others stay exact) and drawn by sequential conditioning instead (exact too: each
vertex's parent from its marginals given the parents already drawn), which costs
``n`` log-partition gradients.

References:
    Wilson, "Generating random spanning trees more quickly than the cover
    time", STOC 1996.
    Propp and Wilson, "How to get a perfectly random sample from a generic
    Markov chain and generate a random spanning tree of a directed graph",
    J. Algorithms 1998.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._matrix_tree import arborescence_log_partition
from ._utils import gradient

__all__ = ["sample_arborescences"]

#: Step budget of one sample's walks (all of them together), per squared vertex count.
#: Past it the sequential conditioning is cheaper than walking on: 40k trees at
#: n = 6 with N(0, 10²) logits took 34 s at 2000, 13 s at 200 (6 seeds); narrow
#: scores never reach it (a median of 15 steps per tree at n = 10).
STEPS_PER_VERTEX_PAIR = 200


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


def _repaired(parents: Tensor, x: Tensor, root: int, inside: Tensor) -> Tensor:
    """``parents`` ``[K, n]``, with each that is no arborescence of ``x`` replaced by ``MAP(x)``.

    Past float64's resolution (scores ~1e30, whose sums round by ~1e22 nats) the
    conditional marginals are rounding noise, negative ones included, and their
    draws may close a cycle or take a forbidden edge. The law is then beyond
    any float64 computation; its most likely arborescence is returned instead.
    """
    k, n = parents.shape
    rows = torch.arange(k, device=parents.device)
    # Each vertex's ancestor after n steps is the root iff the parents form a tree
    # (padding and the root point to themselves).
    step = torch.where(parents < 0, torch.arange(n, device=parents.device), parents)
    top = step.clone()
    for _ in range(n):
        top = step.gather(-1, top)
    edge = x[rows[:, None], step.clamp(min=0), torch.arange(n, device=x.device)]
    tree = (top == root) | ~inside
    allowed = torch.isfinite(edge) | (parents < 0)
    bad = ~(tree & allowed).all(-1)
    if bool(bad.any()):
        best = solvers.max_arborescence(x[bad].cpu(), root=root, lengths=inside[bad].sum(-1).cpu())
        picked = torch.as_tensor(best, device=parents.device).argmax(-2)  # [M, n] parent of j
        parents = parents.clone()
        below = torch.arange(n, device=parents.device) != root
        parents[bad] = torch.where(inside[bad] & below, picked, -1)
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
        generator: optional ``torch.Generator``; it seeds the compiled walks.

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
    device = "cpu" if generator is None else generator.device
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=device))
    walks = solvers.wilson_arborescences(
        x.cpu().numpy(),
        root=root,
        inside=inside.cpu().numpy(),
        count=count,
        seed=seed,
        max_steps=STEPS_PER_VERTEX_PAIR * n * n,
    )
    parents = torch.from_numpy(walks.parents).to(logits.device)
    failed = ~torch.from_numpy(walks.ok).to(logits.device)
    if bool(failed.any()):
        which = failed.nonzero()  # [K, 2]: (sample, graph)
        graphs = which[:, 1]
        drawn = _conditional(x[graphs], root, inside[graphs], generator)
        parents[which[:, 0], which[:, 1]] = _repaired(drawn, x[graphs], root, inside[graphs])
    adjacency = torch.zeros(count, size, n + 1, n, dtype=logits.dtype, device=logits.device)
    # Parent -1 (root, padding) writes into a spare row n, dropped below.
    src = torch.where(parents < 0, n, parents)
    adjacency.scatter_(-2, src.unsqueeze(-2), 1.0)
    return adjacency[..., :n, :]
